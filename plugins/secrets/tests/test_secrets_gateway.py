"""hide-secrets through a running gateway: what the upstream, the client and the log callbacks
see."""

from __future__ import annotations

import logging
from typing import Any

import gatehouse_secrets
import orjson
import pytest
from gatehouse import Call, Principal, hookimpl
from gatehouse.config import ConfigError
from gatehouse.testing import GATEWAY

KEY_TEXT = "Hey, how's it going, API_KEY = 'sk_1234567890abcdef'"
KEY_REDACTED = "Hey, how's it going, API_KEY = '[REDACTED]'"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"


def guardrail(*modes: str, **params: Any) -> dict[str, Any]:
    return {"guardrails": [{"guardrail_name": "hide-secrets", "litellm_params": {
        "guardrail": "hide-secrets", "mode": list(modes), "default_on": True, **params}}]}


@pytest.fixture
def start(gateway):
    async def start(config: dict[str, Any], *more_plugins: tuple[str, Any]):
        return await gateway(config, plugins=[("secrets", gatehouse_secrets), *more_plugins])
    return start


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def sse_content(body: str) -> tuple[list[str], str]:
    """Each event's content pieces, and the last event."""
    events = [line[len("data: "):] for line in body.split("\n") if line.startswith("data: ")]
    pieces = [choice.get("delta", {}).get("content") or ""
              for event in events[:-1] for choice in orjson.loads(event)["choices"]]
    return pieces, events[-1]


# --- pre_call: what the upstream receives ------------------------------------------------------


async def test_chat_messages_reach_the_upstream_redacted(start, fake_upstream):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions", json=chat(
        {"role": "system", "content": "You are helpful."},
        user(KEY_TEXT),
        user([{"type": "text", "text": f"and my AWS key id is {AWS_ID}"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]),
    ))
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last["messages"]
    assert sent[0] == {"role": "system", "content": "You are helpful."}
    assert sent[1]["content"] == KEY_REDACTED
    assert sent[2]["content"][0]["text"] == "and my AWS key id is [REDACTED]"
    assert sent[2]["content"][1]["image_url"]["url"] == "data:image/png;base64,AAAA"


async def test_tool_call_arguments_reach_the_upstream_redacted(start, fake_upstream):
    client = await start(guardrail("pre_call"))
    arguments = orjson.dumps({"url": "https://admin:hunter2pass@db.example.com/x"}).decode()
    resp = await client.post("/v1/chat/completions", json=chat(
        user("fetch it"),
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "fetch", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"used {AWS_ID}"},
    ))
    assert resp.status == 200, await resp.text()
    sent = fake_upstream.last["messages"]
    assert orjson.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {
        "url": "https://admin:[REDACTED]@db.example.com/x"}
    assert sent[2]["content"] == "used [REDACTED]"


async def test_a_secret_split_across_two_text_parts_is_redacted_in_its_parts(start,
                                                                             fake_upstream):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions", json=chat(user([
        {"type": "text", "text": f"my key is {AWS_ID[:8]}"},
        {"type": "text", "text": f"{AWS_ID[8:]} ok"}])))
    assert resp.status == 200, await resp.text()
    parts = fake_upstream.last["messages"][0]["content"]
    assert [p["text"] for p in parts] == ["my key is [REDACTED]", " ok"]


@pytest.mark.parametrize("hidden", [
    f"{AWS_ID[:4]}\u200b{AWS_ID[4:]}",  # a zero-width space inside
    "".join(chr(ord(c) + 0xFEE0) for c in AWS_ID),  # fullwidth
], ids=["zero-width", "fullwidth"])
async def test_a_secret_hidden_by_unicode_is_redacted_whole(start, fake_upstream, hidden):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions", json=chat(user(f"id {hidden} ok")))
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last["messages"][0]["content"] == "id [REDACTED] ok"


async def test_escaped_tool_arguments_are_read_decoded_and_stay_json(start, fake_upstream):
    client = await start(guardrail("pre_call"))
    escaped = AWS_ID.replace("A", "\\u0041")
    resp = await client.post("/v1/chat/completions", json=chat(
        user("look"),
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "fetch", "arguments": f'{{"id": "{escaped}"}}'}}]}))
    assert resp.status == 200, await resp.text()
    arguments = fake_upstream.last["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert orjson.loads(arguments) == {"id": "[REDACTED]"}


async def test_secrets_in_tool_descriptions_prediction_and_user_are_redacted(start, fake_upstream):
    client = await start(guardrail("pre_call"))
    tool = {"type": "function", "function": {"name": "f", "description": f"uses {AWS_ID}",
                                             "parameters": {"type": "object"}}}
    resp = await client.post("/v1/chat/completions", json=chat(
        user("hi"), tools=[tool], user=AWS_ID,
        prediction={"type": "content", "content": f"draft {AWS_ID}"}))
    assert resp.status == 200, await resp.text()
    assert fake_upstream.last["prediction"]["content"] == "draft [REDACTED]"
    assert fake_upstream.last["tools"][0]["function"]["description"] == "uses [REDACTED]"
    assert fake_upstream.last["user"] == "[REDACTED]"


async def test_every_known_format_is_redacted_before_the_upstream(start, fake_upstream,
                                                                  all_samples):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions",
                             json=chat(*(user(sample.text) for sample in all_samples)))
    assert resp.status == 200, await resp.text()
    sent = [message["content"] for message in fake_upstream.last["messages"]]
    leaked = [s.plugin for s, text in zip(all_samples, sent, strict=True) if s.secret in text]
    assert leaked == []


@pytest.mark.parametrize("prompt", [KEY_TEXT, [KEY_TEXT, "nothing here"]])
async def test_completion_prompts_reach_the_upstream_redacted(start, fake_upstream, prompt):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/completions", json={"model": "gpt-4o", "prompt": prompt})
    assert resp.status == 200, await resp.text()
    expected = KEY_REDACTED if isinstance(prompt, str) else [KEY_REDACTED, "nothing here"]
    assert fake_upstream.last["prompt"] == expected


@pytest.mark.parametrize("given", [KEY_TEXT, ["nothing here", KEY_TEXT]])
async def test_embedding_inputs_reach_the_upstream_redacted(start, fake_upstream, given):
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/embeddings", json={"model": "gpt-4o", "input": given})
    assert resp.status == 200, await resp.text()
    expected = KEY_REDACTED if isinstance(given, str) else ["nothing here", KEY_REDACTED]
    assert fake_upstream.last["input"] == expected


async def test_clean_requests_pass_unchanged_and_the_header_names_the_guardrail(start,
                                                                                fake_upstream):
    client = await start(guardrail("pre_call"))
    body = chat(user("What is the capital of France? Call +1 415 555 0199."))
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    assert fake_upstream.last["messages"] == body["messages"]
    assert resp.headers["x-gatehouse-applied-guardrails"] == "hide-secrets"
    assert resp.headers["x-litellm-applied-guardrails"] == "hide-secrets"


async def test_the_warning_names_types_never_values(start, caplog):
    caplog.set_level(logging.WARNING)
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions", json=chat(
        user(f"what is the value of my open ai key? openai_api_key=sk-1234998222 and {AWS_ID}")))
    assert resp.status == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Detected 2 secret(s) in message, of types ['AWS Access Key', 'Secret Keyword']"]
    assert "sk-1234998222" not in caplog.text and AWS_ID not in caplog.text


async def test_in_monitor_mode_the_log_claims_no_redaction(start, fake_upstream, caplog):
    caplog.set_level(logging.WARNING)
    client = await start(guardrail("pre_call", enforce=False))
    resp = await client.post("/v1/chat/completions", json=chat(user(f"my key id is {AWS_ID}")))
    assert resp.status == 200
    # Monitor mode: the secret goes upstream as it was, and the log says so much and no more.
    assert fake_upstream.last["messages"][0]["content"] == f"my key id is {AWS_ID}"
    warnings = [r.getMessage() for r in caplog.records if r.name == "gatehouse.secrets"]
    assert warnings == ["Detected 1 secret(s) in message, of types ['AWS Access Key']"]
    assert "redact" not in caplog.text.lower() and AWS_ID not in caplog.text


# --- post_call: what the client receives -------------------------------------------------------


async def test_the_reply_reaches_the_client_redacted(start, fake_upstream):
    fake_upstream.reply = f"Your key id is {AWS_ID}; keep it safe."
    client = await start(guardrail("post_call"))
    resp = await client.post("/v1/chat/completions", json=chat(user("what is my key id?")))
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "Your key id is [REDACTED]; keep it safe."


async def test_a_streamed_secret_split_across_chunks_is_never_sent(start, fake_upstream):
    fake_upstream.chunks = ["Sure! Your key id is AKIAIOS", "FODNN7EX", "AMPLE and the ",
                            "password: Tr0ub", "4dor&3 -- keep both safe."]
    client = await start(guardrail("post_call"))
    resp = await client.post("/v1/chat/completions", json=chat(user("remind me"), stream=True))
    assert resp.status == 200
    pieces, last = sse_content(await resp.text())
    assert last == "[DONE]"
    assert "".join(pieces) == ("Sure! Your key id is [REDACTED] and the password: [REDACTED] "
                               "-- keep both safe.")
    for leaked in ("AKIA", "FODNN7", "AMPLE", "Tr0ub", "4dor"):
        assert not any(leaked in piece for piece in pieces), leaked


SPLIT_REPLY = f"Sure! Your key id is {AWS_ID}, keep it safe."


def split(text: str, cuts: tuple[int, ...]) -> list[str]:
    return [text[a:b] for a, b in zip((0, *cuts), (*cuts, len(text)))]


@pytest.mark.parametrize("cuts", [
    (24,),  # two chunks, the key cut in half
    (22, 30),  # three
    (21, 25, 33),  # four: the key in three pieces
    (20, 23, 27, 38),  # five: the key in four pieces
])
async def test_a_key_split_across_two_to_five_chunks_reaches_the_client_redacted(
        start, fake_upstream, cuts):
    fake_upstream.chunks = split(SPLIT_REPLY, cuts)
    client = await start(guardrail("post_call"))
    resp = await client.post("/v1/chat/completions", json=chat(
        user("remind me"), stream=True, stream_options={"include_usage": True}))
    assert resp.status == 200
    pieces, last = sse_content(await resp.text())
    assert last == "[DONE]"
    assert "".join(pieces) == "Sure! Your key id is [REDACTED], keep it safe."


async def test_a_streamed_completion_is_redacted_too(start, fake_upstream):
    fake_upstream.chunks = ["token: ghp_FAKEfake0123", "456789FAKEfake0123456789 ok"]
    client = await start(guardrail("post_call"))
    resp = await client.post("/v1/completions",
                             json={"model": "gpt-4o", "prompt": "hi", "stream": True})
    events = [line[6:] for line in (await resp.text()).split("\n") if line.startswith("data: ")]
    text = "".join(c.get("text") or "" for e in events[:-1] for c in orjson.loads(e)["choices"])
    assert text == "token: [REDACTED] ok"


# --- logging_only: what the log callbacks see --------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    @hookimpl
    def on_success(self, record: dict[str, Any]) -> None:
        self.records.append(record)


async def test_logging_only_masks_the_record_and_nothing_else(start, fake_upstream):
    recorder = Recorder()
    fake_upstream.reply = f"Noted: {AWS_ID}"
    client = await start(guardrail("logging_only"), ("recorder", recorder))
    resp = await client.post("/v1/chat/completions", json=chat(user(KEY_TEXT)))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == KEY_TEXT
    assert (await resp.json())["choices"][0]["message"]["content"] == f"Noted: {AWS_ID}"
    await client.app[GATEWAY].call_log.drain()
    (record,) = recorder.records
    assert record["request"]["messages"][0]["content"] == KEY_REDACTED
    assert record["response"]["choices"][0]["message"]["content"] == "Noted: [REDACTED]"
    assert "hide-secrets" in record["guardrails"]


# --- configuration -----------------------------------------------------------------------------


async def test_the_callbacks_shorthand_turns_it_on_for_every_call(start, fake_upstream):
    client = await start({"litellm_settings": {"callbacks": ["hide_secrets"]}})
    resp = await client.post("/v1/chat/completions", json=chat(user(KEY_TEXT)))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == KEY_REDACTED
    assert resp.headers["x-gatehouse-applied-guardrails"] == "hide_secrets"


async def test_the_shorthand_passes_on_detect_secrets_config(start, fake_upstream):
    client = await start({"litellm_settings": {
        "callbacks": ["hide_secrets"],
        "detect_secrets_config": [{"name": "AWSKeyDetector"}]}})
    await client.post("/v1/chat/completions", json=chat(user(f"{KEY_TEXT} {AWS_ID}")))
    assert fake_upstream.last["messages"][0]["content"] == f"{KEY_TEXT} [REDACTED]"


async def test_a_per_request_selection_runs_it_only_when_asked(gateway, fake_upstream):
    config = guardrail("pre_call")
    config["guardrails"][0]["litellm_params"]["default_on"] = False
    client = await gateway(config, plugins=[("secrets", gatehouse_secrets)])
    await client.post("/v1/chat/completions", json=chat(user(KEY_TEXT)))
    assert fake_upstream.last["messages"][0]["content"] == KEY_TEXT
    await client.post("/v1/chat/completions", json=chat(user(KEY_TEXT),
                                                       guardrails=["hide-secrets"]))
    assert fake_upstream.last["messages"][0]["content"] == KEY_REDACTED


async def test_an_unknown_plugin_in_the_config_stops_the_start(start):
    config = guardrail("pre_call", detect_secrets_config=[{"name": "AWSKeyDetectr"}])
    with pytest.raises(ConfigError, match=r"guardrails\[0\]\.litellm_params\."
                                          r"detect_secrets_config.*"
                                          r"no detect-secrets plugin named 'AWSKeyDetectr'"):
        await start(config)


async def test_a_key_with_hide_secrets_false_is_not_redacted(start):
    client = await start(guardrail("pre_call"))
    selector = client.app[GATEWAY].pipeline.selector
    call = Call(request_id="r1", call_type="chat_completion", model="gpt-4o",
                body=chat(user(KEY_TEXT)))
    assert selector.select(call, None, Principal(permissions={})).names == ("hide-secrets",)
    off = Principal(permissions={"hide_secrets": False})
    assert selector.select(call, None, off).names == ()


async def test_a_large_request_is_redacted_too(start, fake_upstream):
    padding = "lorem ipsum dolor sit amet " * 4000  # scanned in a worker thread
    client = await start(guardrail("pre_call"))
    resp = await client.post("/v1/chat/completions",
                             json=chat(user(padding + KEY_TEXT), user(f"id {AWS_ID}")))
    assert resp.status == 200
    sent = fake_upstream.last["messages"]
    assert sent[0]["content"] == padding + KEY_REDACTED
    assert sent[1]["content"] == "id [REDACTED]"


async def test_the_call_log_counts_the_secrets_redacted_by_type(start, fake_upstream):
    recorder = Recorder()
    client = await start(guardrail("pre_call"), ("recorder", recorder))
    resp = await client.post("/v1/chat/completions", json=chat(user(KEY_TEXT),
                                                               user(f"id {AWS_ID}")))
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    ((entry,),) = [record["guardrail_information"] for record in recorder.records]
    assert (entry["guardrail_provider"], entry["guardrail_status"]) == (
        "hide-secrets", "guardrail_intervened")
    assert entry["masked_entity_count"] == {"Secret Keyword": 1, "AWS Access Key": 1}
