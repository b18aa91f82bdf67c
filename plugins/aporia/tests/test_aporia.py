"""The ``aporia`` guardrail through the gateway, against a fake Aporia."""

from __future__ import annotations

import asyncio
import logging

import gatehouse_aporia
import orjson
import pytest
from gatehouse.config import ConfigError

# The reference's expected reply for a blocked call, verbatim.
PII_BLOCK = {"action": "block", "revised_prompt": None,
             "revised_response": "Aporia detected and blocked PII", "explain_log": None}
PII_BLOCKED = {"error": {
    "message": "Violated guardrail policy: "
               + orjson.dumps({"aporia_ai_response": PII_BLOCK}).decode(),
    "details": {"error": "Violated guardrail policy", "aporia_ai_response": PII_BLOCK},
    "type": "guardrail_violation", "param": None, "code": "400"}}
PII_TEXT = "hi my email is ishaan@berri.ai"
PASS = {"action": "passthrough", "revised_prompt": None, "revised_response": None,
        "explain_log": None}


async def test_prompt_check_sends_the_conversation_and_goes_on(aporia, aporia_gateway, chat,
                                                               fake_upstream):
    client = await aporia_gateway()
    resp = await chat(client, [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "c1", "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ])

    assert resp.status == 200
    assert resp.headers["x-gatehouse-applied-guardrails"] == "aporia-guard"
    assert aporia.paths == ["/validate"]
    assert aporia.last == {"validation_target": "prompt", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": '{"city": "Paris"}'},
        {"role": "other", "content": "sunny"}]}
    assert aporia.headers[-1]["x-aporia-api-key"] == aporia.api_key
    assert fake_upstream.last["messages"][-1] == {"role": "tool", "tool_call_id": "c1",
                                                  "content": "sunny"}


async def test_block_answers_the_reference_body(aporia, aporia_gateway, chat, fake_upstream):
    aporia.reply = PII_BLOCK
    client = await aporia_gateway()
    resp = await chat(client, PII_TEXT)

    assert resp.status == 400
    assert resp.headers["x-gatehouse-applied-guardrails"] == "aporia-guard"
    assert await resp.json() == PII_BLOCKED
    assert fake_upstream.received == []


REFERENCE_CONFIG = {"guardrails": [
    {"guardrail_name": "aporia-pre-guard", "litellm_params": {
        "guardrail": "aporia", "mode": "during_call",
        "api_key": "os.environ/APORIA_API_KEY_1", "api_base": "os.environ/APORIA_API_BASE_1"}},
    {"guardrail_name": "aporia-post-guard", "litellm_params": {
        "guardrail": "aporia", "mode": "post_call",
        "api_key": "os.environ/APORIA_API_KEY_2", "api_base": "os.environ/APORIA_API_BASE_2"},
     "guardrail_info": {"params": [
         {"name": "toxicity_score", "type": "float",
          "description": "Score between 0-1 indicating content toxicity level"},
         {"name": "pii_detection", "type": "boolean"}]}},
]}


@pytest.fixture
def reference_env(aporia, monkeypatch):
    for n in ("1", "2"):
        monkeypatch.setenv(f"APORIA_API_KEY_{n}", f"ap-key-{n}")
        monkeypatch.setenv(f"APORIA_API_BASE_{n}", aporia.url)


async def test_reference_config_blocks_pii(reference_env, aporia, gateway, chat, fake_upstream):
    aporia.decide = lambda path, body: PII_BLOCK if "@" in str(body["messages"]) else PASS
    client = await gateway(REFERENCE_CONFIG, plugins=[("aporia", gatehouse_aporia)])
    resp = await chat(client, PII_TEXT, guardrails=["aporia-pre-guard", "aporia-post-guard"])

    assert resp.status == 400
    assert await resp.json() == PII_BLOCKED
    assert aporia.headers[0]["x-aporia-api-key"] == "ap-key-1"


async def test_reference_config_passes_a_clean_call_through_both(reference_env, aporia, gateway,
                                                                 chat, fake_upstream):
    client = await gateway(REFERENCE_CONFIG, plugins=[("aporia", gatehouse_aporia)])
    resp = await chat(client, "hi what is the weather",
                      guardrails=["aporia-pre-guard", "aporia-post-guard"])

    assert resp.status == 200
    assert resp.headers["x-litellm-applied-guardrails"] == "aporia-pre-guard,aporia-post-guard"
    targets = sorted((h["x-aporia-api-key"], b["validation_target"])
                     for h, b in zip(aporia.headers, aporia.received))
    assert targets == [("ap-key-1", "prompt"), ("ap-key-2", "both")]
    guardrails = await (await client.get("/guardrails/list")).json()
    assert guardrails["guardrails"][1]["guardrail_info"]["params"][1]["name"] == "pii_detection"


async def test_without_the_request_naming_them_neither_runs(reference_env, aporia, gateway,
                                                            chat):
    client = await gateway(REFERENCE_CONFIG, plugins=[("aporia", gatehouse_aporia)])
    resp = await chat(client, PII_TEXT)
    assert resp.status == 200
    assert aporia.received == []
    assert "x-gatehouse-applied-guardrails" not in resp.headers


async def test_per_request_extra_body_reaches_aporia_but_cannot_replace_the_check(
        aporia, reference_env, gateway, chat):
    client = await gateway(REFERENCE_CONFIG, plugins=[("aporia", gatehouse_aporia)])
    resp = await chat(client, "write a short poem", guardrails={"aporia-pre-guard": {
        "extra_body": {"success_threshold": 0.9, "validation_target": "response",
                       "messages": []}}})

    assert resp.status == 200
    assert aporia.received == [{
        "success_threshold": 0.9, "validation_target": "prompt",
        "messages": [{"role": "user", "content": "write a short poem"}]}]


@pytest.mark.parametrize("action", ["modify", "rephrase"])
async def test_a_revised_prompt_is_what_the_upstream_gets(aporia, aporia_gateway, chat,
                                                          fake_upstream, action):
    aporia.reply = {"action": action, "revised_prompt": "hi my email is <EMAIL>",
                    "revised_response": None, "explain_log": None}
    client = await aporia_gateway()
    resp = await chat(client, [{"role": "user", "content": "first question"},
                               {"role": "assistant", "content": "first answer"},
                               {"role": "user", "content": PII_TEXT}])

    assert resp.status == 200
    assert [m["content"] for m in fake_upstream.last["messages"]] == [
        "first question", "first answer", "hi my email is <EMAIL>"]


@pytest.mark.parametrize("action", ["modify", "rephrase"])
async def test_a_revised_response_is_what_the_client_gets(aporia, aporia_gateway, chat,
                                                          fake_upstream, action):
    fake_upstream.reply = "You suck!"
    aporia.reply = {"action": action, "revised_prompt": None,
                    "revised_response": "I'd rather not say that.", "explain_log": None}
    client = await aporia_gateway(mode="post_call")
    resp = await chat(client, "insult me")

    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == "I'd rather not say that."
    assert aporia.last == {"validation_target": "both", "response": "You suck!",
                           "messages": [{"role": "user", "content": "insult me"}]}


async def test_a_revised_streamed_response_is_what_the_client_gets(aporia, aporia_gateway, chat,
                                                                   fake_upstream):
    fake_upstream.reply = "You suck, really!"
    aporia.reply = {"action": "rephrase", "revised_prompt": None,
                    "revised_response": "Let's keep it civil.", "explain_log": None}
    client = await aporia_gateway(mode="post_call")
    resp = await chat(client, "insult me", stream=True)

    text = await resp.text()
    assert resp.status == 200
    assert "suck" not in text and "keep it civil" in text
    assert text.rstrip().endswith("data: [DONE]")


async def test_passthrough_changes_nothing(aporia, aporia_gateway, chat, fake_upstream):
    client = await aporia_gateway(mode=["pre_call", "post_call"])
    resp = await chat(client, "hello")

    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    assert fake_upstream.last["messages"] == [{"role": "user", "content": "hello"}]
    assert [b["validation_target"] for b in aporia.received] == ["prompt", "both"]


async def test_during_call_block_discards_the_upstream_reply(aporia, aporia_gateway, chat,
                                                             fake_upstream):
    # Aporia answers only once the upstream has the request, so the block lands while the
    # upstream's reply is already on its way.
    async def after_upstream() -> None:
        await asyncio.wait_for(fake_upstream.request_seen.wait(), 5)

    aporia.before_reply = after_upstream
    aporia.reply = PII_BLOCK
    client = await aporia_gateway(mode="during_call")
    resp = await chat(client, PII_TEXT)

    assert resp.status == 400
    assert len(fake_upstream.received) == 1
    assert (await resp.json())["error"]["details"]["aporia_ai_response"] == PII_BLOCK
    assert fake_upstream.reply not in await resp.text()


@pytest.mark.parametrize("alias, prefix", [("aporia_prompt_injection", "APORIA"),
                                           ("aporio_prompt_injection", "APORIO")])
async def test_the_callback_shorthand_uses_the_environment(aporia, gateway, chat, monkeypatch,
                                                           alias, prefix):
    for other in ("APORIA", "APORIO"):
        monkeypatch.delenv(f"{other}_API_KEY", raising=False)
        monkeypatch.delenv(f"{other}_API_BASE", raising=False)
    monkeypatch.setenv(f"{prefix}_API_KEY", f"{prefix}-key")
    monkeypatch.setenv(f"{prefix}_API_BASE", aporia.url)
    aporia.reply = PII_BLOCK
    client = await gateway({"litellm_settings": {"callbacks": [alias]}},
                           plugins=[("aporia", gatehouse_aporia)])
    resp = await chat(client, PII_TEXT)

    assert resp.status == 400
    assert resp.headers["x-gatehouse-applied-guardrails"] == alias
    assert aporia.headers[-1]["x-aporia-api-key"] == f"{prefix}-key"


@pytest.mark.parametrize("missing", ["API_KEY", "API_BASE"])
async def test_a_missing_key_or_base_is_a_startup_error(gateway, monkeypatch, missing):
    for prefix in ("APORIA", "APORIO"):
        monkeypatch.delenv(f"{prefix}_{missing}", raising=False)
    monkeypatch.setenv("APORIA_API_KEY" if missing == "API_BASE" else "APORIA_API_BASE",
                       "http://aporia.invalid" if missing == "API_KEY" else "ap-key")
    config = {"guardrails": [{"guardrail_name": "aporia-guard",
                              "litellm_params": {"guardrail": "aporia"}}]}
    with pytest.raises(ConfigError) as caught:
        await gateway(config, plugins=[("aporia", gatehouse_aporia)])
    message = str(caught.value)
    assert "guardrails[0].litellm_params" in message
    assert f"APORIA_{missing} or APORIO_{missing}" in message


async def test_revisions_are_logged_without_the_text(aporia, aporia_gateway, chat, caplog):
    aporia.reply = {"action": "modify", "revised_prompt": "hi my email is <EMAIL>",
                    "revised_response": None, "explain_log": None}
    client = await aporia_gateway()
    with caplog.at_level(logging.INFO, logger="gatehouse.aporia"):
        assert (await chat(client, PII_TEXT)).status == 200
    assert "aporia-guard" in caplog.text
    assert "ishaan@berri.ai" not in caplog.text and "<EMAIL>" not in caplog.text
