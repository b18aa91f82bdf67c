"""The ``aim`` guardrail against a fake Aim Security: what is sent, each action Aim answers,
and anonymized values restored in replies and streams."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from gatehouse.config import ConfigError

MASTER = "sk-aim-master-3e8b1f6c2d9a"
BLOCKED = {"error": {"message": "Jailbreak attempt detected",
                     "details": {"error": "Jailbreak attempt detected"},
                     "type": "guardrail_violation", "param": None, "code": "400"}}


def stream_events(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in text.split("\n") if line.startswith("data: {")]


def streamed_content(events: list[dict[str, Any]]) -> str:
    return "".join(choice.get("delta", {}).get("content") or ""
                   for event in events for choice in event.get("choices", ()))


# --- what is sent ------------------------------------------------------------------------------


async def test_block_is_refused_with_aims_message(aim_gateway, fake_upstream, send_chat):
    client = await aim_gateway()

    resp = await send_chat(client, "tell me the forbidden thing")

    assert resp.status == 400
    assert await resp.json() == BLOCKED
    assert fake_upstream.received == []


async def test_conversation_and_headers_sent_to_aim(aim_gateway, aim, send_chat):
    client = await aim_gateway()

    resp = await send_chat(client, [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": [
                                   {"type": "text", "text": "look at "},
                                   {"type": "text", "text": "this"},
                                   {"type": "image_url", "image_url": {"url": "x"}}]}],
                      headers={"x-aim-user-email": "ana@corp.example"})

    assert resp.status == 200
    assert aim.paths == ["/fw/v1/analyze"]
    assert aim.last == {"messages": [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "look at this"}]}
    sent = aim.headers[-1]
    assert sent["authorization"] == f"Bearer {aim.api_key}"
    assert sent["x-aim-litellm-hook"] == "pre_call"
    assert sent["x-aim-litellm-version"]
    assert sent["x-aim-call-id"] == resp.headers["x-litellm-call-id"]
    assert sent["x-aim-user-email"] == "ana@corp.example"
    assert "x-aim-gateway-key-alias" not in sent


async def test_key_alias_is_sent_and_absent_headers_are_left_out(aim_gateway, aim, send_chat):
    client = await aim_gateway(config={"general_settings": {"master_key": MASTER}})
    made = await client.post("/key/generate", json={"key_alias": "checkout-app"},
                             headers={"Authorization": f"Bearer {MASTER}"})
    key = (await made.json())["key"]

    await send_chat(client, "hello", headers={"Authorization": f"Bearer {key}"})

    assert aim.headers[-1]["x-aim-gateway-key-alias"] == "checkout-app"
    assert "x-aim-user-email" not in aim.headers[-1]


@pytest.mark.parametrize(("mode", "hook"), [("pre_call", "pre_call"),
                                            ("during_call", "moderation"),
                                            ("post_call", "output")])
async def test_each_mode_names_its_hook(aim_gateway, aim, send_chat, mode, hook):
    client = await aim_gateway(mode=mode)

    await send_chat(client, "hello")

    assert [h["x-aim-litellm-hook"] for h in aim.headers] == [hook]


async def test_the_reply_is_sent_after_the_conversation(aim_gateway, aim, fake_upstream, send_chat):
    fake_upstream.reply = "Hi there."
    client = await aim_gateway(mode="post_call")

    await send_chat(client, "hello")

    assert aim.last == {"messages": [{"role": "user", "content": "hello"},
                                     {"role": "assistant", "content": "Hi there."}]}


async def test_a_blocked_reply_is_refused(aim_gateway, fake_upstream, send_chat):
    fake_upstream.reply = "here is the forbidden answer"
    client = await aim_gateway(mode="post_call")

    resp = await send_chat(client, "hello")

    assert resp.status == 400
    assert await resp.json() == BLOCKED


async def test_monitor_action_only_logs(aim_gateway, aim, fake_upstream, send_chat, caplog):
    aim.decide = None
    aim.reply = {"analysis_result": {"policy_drill_down": {"Toxicity": {}}},
                 "required_action": {"action_type": "monitor_action",
                                     "detection_message": "Toxic language"}}
    client = await aim_gateway()

    with caplog.at_level(logging.INFO, logger="gatehouse.aim"):
        resp = await send_chat(client, "hello")

    assert resp.status == 200
    assert len(fake_upstream.received) == 1
    assert "Aim monitor action (policies: Toxicity)" in caplog.text


async def test_request_extra_body_is_merged(aim_gateway, aim, send_chat):
    client = await aim_gateway()

    await send_chat(client, "hello", guardrails={"aim-protected-app": {"extra_body": {
        "session_id": "s-1", "messages": []}}})

    assert aim.last == {"session_id": "s-1", "messages": [{"role": "user", "content": "hello"}]}


# --- anonymizing -------------------------------------------------------------------------------


async def test_anonymized_prompt_goes_upstream_and_the_reply_is_restored(
        aim_gateway, fake_upstream, send_chat):
    fake_upstream.reply = "I will write to [EMAIL_1] today."
    client = await aim_gateway(mode=["pre_call", "post_call"])

    resp = await send_chat(client, [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "mail bob@example.com please"}])

    assert resp.status == 200
    assert fake_upstream.last["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "mail [EMAIL_1] please"}]
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "I will write to bob@example.com today."


async def test_new_message_given_apart_from_the_history(aim_gateway, aim, fake_upstream, send_chat):
    aim.decide = None
    aim.reply = {"analysis_result": {"session_entities": [
        {"name": "PHONE_1", "content": "555-0100"}]},
        "required_action": {"action_type": "anonymize_action", "chat_redaction_result": {
            "redacted_new_message": {"role": "user", "content": "call [PHONE_1]"},
            "all_redacted_messages": [{"role": "system", "content": "Be brief."}]}}}
    client = await aim_gateway()

    await send_chat(client, [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "call 555-0100"}])

    assert fake_upstream.last["messages"] == [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "call [PHONE_1]"}]


async def test_a_redaction_that_does_not_fit_fails_closed(aim_gateway, aim, fake_upstream, send_chat):
    aim.decide = None
    message = {"role": "user", "content": "[EMAIL_1]"}
    aim.reply = {"required_action": {"action_type": "anonymize_action", "chat_redaction_result": {
        "redacted_new_message": message, "all_redacted_messages": [message] * 3}}}
    client = await aim_gateway()

    resp = await send_chat(client, "mail bob@example.com")

    assert resp.status == 502
    assert "does not fit the 1 sent" in (await resp.json())["error"]["message"]
    assert fake_upstream.received == []


async def test_anonymized_value_split_across_chunks_is_restored_before_it_is_sent(
        aim_gateway, fake_upstream, send_chat):
    fake_upstream.chunks = ["Writing to [EMA", "IL_1] now", "."]
    client = await aim_gateway(mode=["pre_call", "post_call"])

    resp = await send_chat(client, "mail bob@example.com please", stream=True)
    events = stream_events(await resp.text())

    assert streamed_content(events) == "Writing to bob@example.com now."
    assert "[EMA" not in streamed_content(events)
    assert fake_upstream.last["messages"][0]["content"] == "mail [EMAIL_1] please"


async def test_a_blocked_streamed_reply_is_never_sent(aim_gateway, fake_upstream, send_chat):
    fake_upstream.chunks = ["here is the forb", "idden answer"]
    client = await aim_gateway(mode="post_call")

    resp = await send_chat(client, "hello", stream=True)
    events = stream_events(await resp.text())

    assert streamed_content(events) == ""
    assert events[-1]["error"]["message"] == "Jailbreak attempt detected"


async def test_values_are_restored_only_in_the_call_that_anonymized_them(
        aim_gateway, fake_upstream, send_chat):
    fake_upstream.reply = "Your address is [EMAIL_1]."
    client = await aim_gateway(mode=["pre_call", "post_call"])

    first = await send_chat(client, "mail bob@example.com")
    second = await send_chat(client, "what is my address?")

    assert (await first.json())["choices"][0]["message"]["content"] == \
        "Your address is bob@example.com."
    assert (await second.json())["choices"][0]["message"]["content"] == \
        "Your address is [EMAIL_1]."


async def test_during_call_cannot_anonymize_and_says_so(aim_gateway, fake_upstream, send_chat, caplog):
    client = await aim_gateway(mode="during_call")

    resp = await send_chat(client, "mail bob@example.com")

    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "mail bob@example.com"
    assert "use pre_call to anonymize" in caplog.text


# --- configuration and failures ---------------------------------------------------------------


async def test_key_and_base_come_from_the_environment(aim_gateway, aim, send_chat, monkeypatch):
    monkeypatch.setenv("AIM_API_KEY", "aim-from-env")
    monkeypatch.setenv("AIM_API_BASE", aim.url)
    client = await aim_gateway(api_key=None, api_base=None)

    await send_chat(client, "hello")

    assert aim.headers[-1]["authorization"] == "Bearer aim-from-env"


def test_the_default_base_is_aims(monkeypatch):
    from gatehouse_aim import AimParams
    monkeypatch.delenv("AIM_API_BASE", raising=False)
    params = AimParams.model_validate({"guardrail": "aim", "api_key": "k"})
    assert params.api_base == "https://api.aim.security"


async def test_missing_key_is_refused_in_the_references_words(aim_gateway, monkeypatch):
    monkeypatch.delenv("AIM_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="Couldn't get Aim api key, either set the "
                                          "`AIM_API_KEY` in the environment or pass it as a "
                                          "parameter to the guardrail in the config file"):
        await aim_gateway(api_key=None)


async def test_vendor_error_names_aim(aim_gateway, aim, send_chat, caplog):
    aim.status = 500
    client = await aim_gateway()

    resp = await send_chat(client, "hello")

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "'aim-protected-app'" in message and "Aim /fw/v1/analyze answered HTTP 500" in message
    assert "Aim /fw/v1/analyze answered HTTP 500" in caplog.text
    assert aim.api_key not in caplog.text
