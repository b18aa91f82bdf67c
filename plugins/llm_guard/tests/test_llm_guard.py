"""LLM Guard as LiteLLM configures it (``callbacks: ["llmguard_moderations"]`` and
``LLM_GUARD_API_BASE``), its modes, and the ``llm_guard`` guardrail type."""

from __future__ import annotations

import logging
from typing import Any

import gatehouse_llm_guard
import orjson
import pytest
from gatehouse.config import ConfigError

PLUGIN = [("llm_guard", gatehouse_llm_guard)]
MASTER = "sk-llm-guard-master-7d1e4c9b2a6f"
REFUSED = {"error": {"message": "Violated content safety policy",
                     "details": {"error": "Violated content safety policy"},
                     "type": "guardrail_violation", "param": None, "code": "400"}}


@pytest.fixture
def with_callback(gateway, llm_guard, monkeypatch):
    """A gateway configured as the reference shows: the callback, its mode, the env base."""
    monkeypatch.setenv("LLM_GUARD_API_BASE", llm_guard.url)

    async def make(**settings: Any):
        return await gateway({"general_settings": {"master_key": MASTER}, "litellm_settings": {
            "callbacks": ["llmguard_moderations"], **settings}}, plugins=PLUGIN)

    return make


async def new_key(client, **body: Any) -> dict[str, str]:
    resp = await client.post("/key/generate", json=body,
                             headers={"Authorization": f"Bearer {MASTER}"})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['key']}"}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {MASTER}"}


async def test_invalid_prompt_is_refused_with_the_reference_body(
        with_callback, llm_guard, fake_upstream):
    client = await with_callback()

    resp = await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "the forbidden one"}]})

    assert resp.status == 400
    assert await resp.json() == REFUSED
    assert resp.headers["x-litellm-applied-guardrails"] == "llmguard_moderations"
    assert llm_guard.paths == ["/analyze/prompt"]


async def test_what_is_sent_and_logged(with_callback, llm_guard, caplog):
    client = await with_callback()

    with caplog.at_level(logging.INFO, logger="gatehouse.llm_guard"):
        resp = await client.post("/v1/chat/completions", headers=admin(), json={
            "model": "gpt-4o", "messages": [{"role": "system", "content": "Be helpful"},
                                            {"role": "user", "content": "What do you know?"}]})

    assert resp.status == 200
    assert llm_guard.paths[0] == "/analyze/prompt"
    assert llm_guard.received[0] == {"prompt": "Be helpful\nWhat do you know?"}
    assert "authorization" not in llm_guard.headers[0]
    assert ('LLM Guard: Received response - {"is_valid":true,"scanners":{"Regex":0.0}}'
            in caplog.text)
    assert "What do you know?" not in caplog.text


async def test_the_reply_is_checked_with_its_prompt(with_callback, llm_guard, fake_upstream):
    fake_upstream.reply = "here is the forbidden answer"
    client = await with_callback()

    resp = await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})

    assert resp.status == 400
    assert await resp.json() == REFUSED
    assert llm_guard.paths == ["/analyze/prompt", "/analyze/output"]
    assert llm_guard.last == {"prompt": "hi", "output": "here is the forbidden answer"}


async def test_an_invalid_streamed_reply_is_never_sent(with_callback, fake_upstream):
    fake_upstream.chunks = ["here is the forb", "idden answer"]
    client = await with_callback()

    resp = await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    events = [orjson.loads(line[6:]) for line in (await resp.text()).split("\n")
              if line.startswith("data: {")]

    assert "".join(c["delta"].get("content") or "" for e in events[:-1]
                   for c in e["choices"]) == ""
    assert events[-1]["error"]["message"] == "Violated content safety policy"


async def test_a_base_with_a_path_and_a_slash(gateway, llm_guard, send_chat):
    client = await gateway({"guardrails": [{"guardrail_name": "g", "litellm_params": {
        "guardrail": "llm_guard", "mode": "pre_call", "default_on": True,
        "api_base": llm_guard.url + "/llm-guard/"}}]}, plugins=PLUGIN)

    await send_chat(client, "hello")

    assert llm_guard.paths == ["/llm-guard/analyze/prompt"]


@pytest.mark.parametrize("config", [
    {"litellm_settings": {"callbacks": ["llmguard_moderations"]}},
    {"guardrails": [{"guardrail_name": "g", "litellm_params": {"guardrail": "llm_guard"}}]},
])
async def test_missing_base_is_refused_in_the_references_words(gateway, monkeypatch, config):
    monkeypatch.delenv("LLM_GUARD_API_BASE", raising=False)
    with pytest.raises(ConfigError, match="Missing `LLM_GUARD_API_BASE` from environment"):
        await gateway(config, plugins=PLUGIN)


async def test_key_specific_checks_only_keys_that_ask_for_it(with_callback, llm_guard):
    client = await with_callback(llm_guard_mode="key-specific")
    checked = await new_key(client, permissions={"enable_llm_guard_check": True})
    unchecked = await new_key(client)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "the forbidden one"}]}

    refused = await client.post("/v1/chat/completions", headers=checked, json=body)
    passed = await client.post("/v1/chat/completions", headers=unchecked, json=body)

    assert refused.status == 400 and await refused.json() == REFUSED
    assert passed.status == 200
    assert len(llm_guard.received) == 1


async def test_request_specific_checks_only_requests_that_ask_for_it(with_callback, llm_guard):
    client = await with_callback(llm_guard_mode="request-specific")
    key = await new_key(client, permissions={"enable_llm_guard_check": True})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "the forbidden one"}]}

    passed = await client.post("/v1/chat/completions", headers=key, json=body)
    refused = await client.post("/v1/chat/completions", headers=key, json={
        **body, "metadata": {"permissions": {"enable_llm_guard_check": True}}})

    assert passed.status == 200
    assert refused.status == 400 and await refused.json() == REFUSED
    assert len(llm_guard.received) == 1


async def test_unknown_mode_is_a_config_error(with_callback):
    with pytest.raises(ConfigError, match="llm_guard_mode"):
        await with_callback(llm_guard_mode="per-key")


async def test_request_extra_body_is_merged(with_callback, llm_guard):
    client = await with_callback()

    await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}],
        "guardrails": {"llmguard_moderations": {"extra_body": {
            "scanners_suppress": ["Toxicity"], "prompt": "something else"}}}})

    assert llm_guard.received[0] == {"scanners_suppress": ["Toxicity"], "prompt": "hello"}


async def test_vendor_error_names_llm_guard(with_callback, llm_guard, fake_upstream, caplog):
    llm_guard.status = 503
    client = await with_callback()

    resp = await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "'llmguard_moderations'" in message
    assert "LLM Guard /analyze/prompt answered HTTP 503" in message
    assert "LLM Guard /analyze/prompt answered HTTP 503" in caplog.text


async def test_a_slow_llm_guard_times_out_naming_it(with_callback, llm_guard, fake_upstream):
    llm_guard.stall = True
    client = await with_callback(timeout=0.1)

    resp = await client.post("/v1/chat/completions", headers=admin(), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})

    assert resp.status == 504
    message = (await resp.json())["error"]["message"]
    assert "'llmguard_moderations'" in message
    assert "no verdict from LLM Guard within 0.1s" in message
