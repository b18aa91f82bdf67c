"""The ``openai_moderation`` guardrail against a fake OpenAI ``/moderations`` endpoint."""

from __future__ import annotations

import orjson
import pytest
from gatehouse.config import ConfigError

APPLIED = ("x-gatehouse-applied-guardrails", "x-litellm-applied-guardrails")


def blocked_body(categories: list[str], scores: dict[str, float]) -> dict:
    detail = {"moderation_result": {"violated_categories": categories,
                                    "category_scores": scores}}
    return {"error": {
        "message": f"Violated OpenAI moderation policy: {orjson.dumps(detail).decode()}",
        "details": {"error": "Violated OpenAI moderation policy", **detail},
        "type": "guardrail_violation", "param": None, "code": "400"}}


async def test_flagged_prompt_is_refused_with_the_reference_body(
        moderated, openai_api, fake_upstream, send_chat):
    openai_api.reply = openai_api.answer({"hate": 0.95, "harassment": 0.81})
    client = await moderated(mode="pre_call")

    resp = await send_chat(client, "a hateful message")

    assert resp.status == 400
    assert await resp.json() == blocked_body(["harassment", "hate"],
                                             {"harassment": 0.81, "hate": 0.95})
    assert [resp.headers.get(h) for h in APPLIED] == ["openai-moderation"] * 2
    assert fake_upstream.received == []


async def test_what_is_sent_to_openai(moderated, openai_api, send_chat):
    client = await moderated(mode="pre_call")

    resp = await send_chat(client, [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "first question"},
                               {"role": "assistant", "content": "an earlier answer"},
                               {"role": "user", "content": [
                                   {"type": "text", "text": "second question"},
                                   {"type": "image_url", "image_url": {"url": "x"}}]}])

    assert resp.status == 200
    assert openai_api.paths == ["/v1/moderations"]
    assert openai_api.headers[-1]["authorization"] == f"Bearer {openai_api.api_key}"
    # The caller's own text; the assistant's earlier turns are not the caller's words.
    assert openai_api.last == {"model": "omni-moderation-latest",
                               "input": "Be brief.\nfirst question\nsecond question"}


async def test_clean_prompt_goes_upstream_unchanged(moderated, fake_upstream, send_chat):
    client = await moderated(mode="pre_call")

    resp = await send_chat(client, "what is the capital of France")

    assert resp.status == 200
    assert fake_upstream.last["messages"] == [
        {"role": "user", "content": "what is the capital of France"}]


async def test_model_is_configurable(moderated, openai_api, send_chat):
    client = await moderated(model="text-moderation-latest")

    await send_chat(client, "hello")

    assert openai_api.last["model"] == "text-moderation-latest"


async def test_embedding_and_completion_inputs_are_checked(moderated, openai_api, fake_upstream):
    openai_api.reply = openai_api.answer({"violence": 0.9})
    client = await moderated(mode="pre_call")

    embedding = await client.post("/v1/embeddings", json={
        "model": "gpt-4o", "input": ["one text", "another text"]})
    completion = await client.post("/v1/completions", json={
        "model": "gpt-4o", "prompt": "a violent prompt"})

    assert embedding.status == completion.status == 400
    assert [body["input"] for body in openai_api.received] == ["one text\nanother text",
                                                               "a violent prompt"]
    assert fake_upstream.received == []


async def test_flagged_reply_is_refused(moderated, openai_api, fake_upstream, send_chat):
    fake_upstream.reply = "a violent reply"
    openai_api.decide = lambda path, body: openai_api.answer(
        {"violence": 0.99} if "violent" in body["input"] else None)
    client = await moderated(mode="post_call")

    resp = await send_chat(client, "tell me a story")

    assert resp.status == 400
    assert await resp.json() == blocked_body(["violence"], {"violence": 0.99})
    assert openai_api.last["input"] == "a violent reply"


async def test_streamed_reply_is_checked_whole_before_any_is_sent(
        moderated, openai_api, fake_upstream, send_chat):
    fake_upstream.chunks = ["a vio", "lent ", "reply"]
    openai_api.decide = lambda path, body: openai_api.answer(
        {"violence": 0.99} if "violent" in body["input"] else None)
    client = await moderated(mode="post_call")

    resp = await send_chat(client, "tell me a story", stream=True)
    events = [orjson.loads(line[6:]) for line in (await resp.text()).split("\n")
              if line.startswith("data: {")]

    sent = "".join(choice["delta"].get("content") or ""
                   for event in events[:-1] for choice in event["choices"])
    assert sent == ""
    assert events[-1]["error"]["details"]["moderation_result"]["violated_categories"] == [
        "violence"]
    assert openai_api.last["input"] == "a violent reply"


async def test_during_call_block_discards_the_reply(moderated, openai_api, send_chat):
    openai_api.reply = openai_api.answer({"self-harm": 0.9})
    client = await moderated(mode="during_call")

    resp = await send_chat(client, "hello")

    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["moderation_result"] == {
        "violated_categories": ["self-harm"], "category_scores": {"self-harm": 0.9}}


async def test_request_extra_body_is_merged_but_cannot_replace_the_text(
        moderated, openai_api, send_chat):
    client = await moderated(mode="pre_call")

    resp = await send_chat(client, "hello", guardrails={"openai-moderation": {"extra_body": {
        "user_tag": "team-a", "input": "something harmless", "model": "other"}}})

    assert resp.status == 200
    assert openai_api.last == {"user_tag": "team-a", "model": "omni-moderation-latest",
                               "input": "hello"}


async def test_vendor_error_names_openai_and_fails_closed(moderated, openai_api, fake_upstream,
                                                          send_chat, caplog):
    openai_api.status = 500
    client = await moderated(mode="pre_call")

    resp = await send_chat(client, "hello")

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "'openai-moderation'" in message
    assert "OpenAI moderation /v1/moderations answered HTTP 500" in message
    assert "OpenAI moderation /v1/moderations answered HTTP 500" in caplog.text
    assert fake_upstream.received == []


async def test_key_comes_from_the_environment(moderated, openai_api, send_chat, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    client = await moderated(api_key=None)

    await send_chat(client, "hello")

    assert openai_api.headers[-1]["authorization"] == "Bearer sk-from-env"


async def test_missing_key_is_refused_in_the_references_words(moderated, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as error:
        await moderated(api_key=None)

    assert ("guardrails[0].litellm_params: Value error, OpenAI Moderation: api_key is required. "
            "Set OPENAI_API_KEY environment variable or pass it in configuration."
            ) in str(error.value)


async def test_with_cache_ttl_earlier_turns_are_not_sent_again(moderated, openai_api,
                                                               send_chat):
    # Its verdict depends only on the text, so the type is cacheable (Guardrail.cacheable).
    client = await moderated(mode="pre_call", cache_ttl=60)
    first = [{"role": "user", "content": "first question"}]
    second = [*first, {"role": "assistant", "content": "an answer"},
              {"role": "user", "content": "second question"}]
    for messages in (first, second, second):
        assert (await send_chat(client, messages)).status == 200
    assert [body["input"] for body in openai_api.received] == [
        "first question", "second question"]
