"""guardrails_ai through a running gateway: what the guard is sent, what the caller and the
upstream see, and how it is configured."""

from __future__ import annotations

import logging
from typing import Any

import gatehouse_guardrails_ai
import pytest
from gatehouse import hookimpl
from gatehouse.config import ConfigError
from gatehouse.testing import GATEWAY

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "my old mail is old@example.com"},
    {"role": "assistant", "content": "Noted."},
    {"role": "user", "content": "now write to new@example.com"},
]


def chat(messages: Any, **extra: Any) -> dict[str, Any]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {"model": "gpt-4o", "messages": messages, **extra}


async def test_the_guard_validates_the_latest_user_turn_at_its_validate_url(
        guard_gateway, guard, fake_upstream):
    client = await guard_gateway()
    resp = await client.post("/v1/chat/completions", json=chat(CONVERSATION))
    assert resp.status == 200, await resp.text()
    assert guard.paths == ["/guards/detect-secrets-guard/validate"]
    assert guard.received == [{"llmOutput": "now write to new@example.com"}]
    assert "authorization" not in guard.headers[0]
    # The guard's corrected text replaces that turn; earlier turns are left as they were.
    sent = fake_upstream.last["messages"]
    assert sent[3]["content"] == "now write to <EMAIL>"
    assert sent[:3] == CONVERSATION[:3]


async def test_a_failed_validation_refuses_with_the_servers_whole_answer(
        guard_gateway, guard, fake_upstream):
    client = await guard_gateway()
    resp = await client.post("/v1/chat/completions", json=chat("a forbidden thing"))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["details"] == {"error": "Violated guardrail policy", "guardrails_ai_response": {
        "callId": "call-1", "rawLlmOutput": "a forbidden thing", "validatedOutput": None,
        "validationPassed": False}}
    assert error["message"].startswith("Violated guardrail policy: ")
    assert fake_upstream.received == []


async def test_the_raw_output_stands_in_when_the_guard_gives_no_validated_output(
        guard_gateway, guard, fake_upstream):
    guard.decide = lambda path, body: {"validationPassed": True, "validatedOutput": None,
                                       "rawLlmOutput": "as the guard read it"}
    client = await guard_gateway()
    await client.post("/v1/chat/completions", json=chat("hello"))
    assert fake_upstream.last["messages"][0]["content"] == "as the guard read it"
    # Neither given: the turn goes on as written.
    guard.decide = lambda path, body: {"validationPassed": True}
    await client.post("/v1/chat/completions", json=chat("hello again"))
    assert fake_upstream.last["messages"][0]["content"] == "hello again"


async def test_a_turn_in_text_parts_is_judged_whole_and_images_are_kept(
        guard_gateway, guard, fake_upstream):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    content = [{"type": "text", "text": "forbid"}, image, {"type": "text", "text": "den"}]
    client = await guard_gateway()
    resp = await client.post("/v1/chat/completions", json=chat([{"role": "user",
                                                                 "content": content}]))
    assert resp.status == 400, "a word split across two text parts is one text to the model"
    assert guard.last == {"llmOutput": "forbidden"}
    content = [{"type": "text", "text": "mail a@b.com"}, image]
    await client.post("/v1/chat/completions", json=chat([{"role": "user", "content": content}]))
    assert fake_upstream.last["messages"][0]["content"] == [
        {"type": "text", "text": "mail <EMAIL>"}, image]


async def test_completions_prompts_are_validated(guard_gateway, guard, fake_upstream):
    client = await guard_gateway()
    resp = await client.post("/v1/completions", json={"model": "gpt-4o",
                                                      "prompt": "write to x@y.com"})
    assert resp.status == 200
    assert fake_upstream.last["prompt"] == "write to <EMAIL>"


async def test_extra_body_reaches_the_guard_but_cannot_replace_the_text(
        guard_gateway, guard, fake_upstream):
    client = await guard_gateway()
    resp = await client.post("/v1/chat/completions", json=chat(
        "a forbidden thing", guardrails={"gai": {"extra_body": {
            "numReasks": 2, "llmOutput": "something harmless"}}}))
    assert resp.status == 400
    assert guard.last == {"numReasks": 2, "llmOutput": "a forbidden thing"}


async def test_replies_are_validated_but_never_changed(guard_gateway, guard, fake_upstream):
    client = await guard_gateway(mode="post_call")
    fake_upstream.reply = "write to someone@example.com"
    resp = await client.post("/v1/chat/completions", json=chat("hi"))
    assert resp.status == 200
    assert guard.received == [{"llmOutput": "write to someone@example.com"}]
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "write to someone@example.com"
    fake_upstream.reply = "a forbidden reply"
    resp = await client.post("/v1/chat/completions", json=chat("hi"))
    assert resp.status == 400
    assert "a forbidden reply" not in (await resp.json())["error"]["message"].split(":")[0]


async def test_the_inputs_format(guard_gateway, inputs_guard, fake_upstream):
    client = await guard_gateway(guardrails_ai_api_input_format="inputs")
    resp = await client.post("/v1/chat/completions", json=chat("mail a@b.com"))
    assert resp.status == 200
    assert inputs_guard.last == {"inputs": [{"name": "text", "shape": [1],
                                             "data": ["mail a@b.com"], "datatype": "BYTES"}]}
    assert fake_upstream.last["messages"][0]["content"] == "mail <EMAIL>"
    # The older API refuses with HTTP 400; its body is the verdict.
    resp = await client.post("/v1/chat/completions", json=chat("a forbidden thing"))
    assert resp.status == 400
    assert (await resp.json())["error"]["details"] == {
        "error": "Violated guardrail policy", "guardrails_ai_response": {
            "error": "Validation failed for field with errors: forbidden"}}


class Recorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    @hookimpl
    def on_success(self, record: dict[str, Any]) -> None:
        self.records.append(record)


async def test_logging_only_corrects_what_is_logged_and_nothing_else(gateway, guard,
                                                                     fake_upstream):
    recorder = Recorder()
    client = await gateway({"guardrails": [{"guardrail_name": "gai", "litellm_params": {
        "guardrail": "guardrails_ai", "guard_name": "g", "mode": "logging_only",
        "api_base": guard.url, "default_on": True}}]},
        plugins=[("guardrails_ai", gatehouse_guardrails_ai), ("recorder", recorder)])
    fake_upstream.reply = "a forbidden reply"
    resp = await client.post("/v1/chat/completions", json=chat("mail a@b.com"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "mail a@b.com"
    assert (await resp.json())["choices"][0]["message"]["content"] == "a forbidden reply"
    await client.app[GATEWAY].call_log.drain()
    (record,) = recorder.records
    assert record["request"]["messages"][0]["content"] == "mail <EMAIL>"
    # What the guard rejects is not kept in the log either.
    assert record["response"]["choices"][0]["message"]["content"] == \
        "[withheld: failed the Guardrails AI guard]"


@pytest.mark.parametrize(("api_base", "path"), [
    ("{url}", "/guards/detect-secrets-guard/validate"),
    ("{url}/prefix/", "/prefix/guards/detect-secrets-guard/validate"),
    # Joined as a URL reference: without the trailing "/" the last segment is replaced.
    ("{url}/prefix", "/guards/detect-secrets-guard/validate"),
])
async def test_the_validate_url_is_joined_to_api_base_as_a_reference(
        guard_gateway, guard, api_base, path, caplog):
    with caplog.at_level(logging.WARNING):
        client = await guard_gateway(api_base=api_base.format(url=guard.url))
    await client.post("/v1/chat/completions", json=chat("hello"))
    assert guard.paths == [path]
    warned = [r.getMessage() for r in caplog.records if "no trailing '/'" in r.getMessage()]
    assert bool(warned) == api_base.endswith("/prefix")


async def test_api_base_comes_from_the_environment(gateway, guard, monkeypatch):
    monkeypatch.setenv("GUARDRAILS_AI_API_BASE", guard.url + "/")
    client = await gateway({"guardrails": [{"guardrail_name": "gai", "litellm_params": {
        "guardrail": "guardrails_ai", "guard_name": "pii", "default_on": True}}]},
        plugins=[("guardrails_ai", gatehouse_guardrails_ai)])
    await client.post("/v1/chat/completions", json=chat("hello"))
    assert guard.paths == ["/guards/pii/validate"]


async def test_a_guard_name_is_required(gateway):
    with pytest.raises(ConfigError, match="Please pass the Guardrails AI guard name via "
                                          "'litellm_params::guard_name'"):
        await gateway({"guardrails": [{"guardrail_name": "gai", "litellm_params": {
            "guardrail": "guardrails_ai", "mode": "pre_call"}}]},
            plugins=[("guardrails_ai", gatehouse_guardrails_ai)])
