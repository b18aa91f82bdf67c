"""LiteLLM's ``openai_moderations`` callback: a moderation model from ``model_list``, asked
through the gateway's own providers."""

from __future__ import annotations

import asyncio
from typing import Any

import gatehouse_openai_moderation
import pytest
from gatehouse.gateway import StartupError

PLUGIN = [("openai_moderation", gatehouse_openai_moderation)]
REFUSED = {"error": {"message": "Violated content safety policy",
                     "details": {"error": "Violated content safety policy"},
                     "type": "guardrail_violation", "param": None, "code": "403"}}


@pytest.fixture
def model_list(fake_upstream, openai_api) -> list[dict[str, Any]]:
    def moderation_model(name: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{name}", "api_base": openai_api.url + "/v1",
            "api_key": openai_api.api_key, **params}}

    return [fake_upstream.model_entry("gpt-4o"), moderation_model("text-moderation-latest"),
            moderation_model("omni-moderation-latest")]


@pytest.fixture
def with_callback(gateway, model_list):
    """A gateway configured the reference's way: ``callbacks: ["openai_moderations"]``."""

    async def make(**settings: Any):
        return await gateway({"model_list": model_list, "litellm_settings": {
            "callbacks": ["openai_moderations"], **settings}}, plugins=PLUGIN)

    return make


async def test_flagged_call_is_refused_with_403(with_callback, openai_api, fake_upstream, send_chat):
    openai_api.reply = openai_api.answer({"hate": 0.99})
    client = await with_callback()

    resp = await send_chat(client, "something hateful")

    assert resp.status == 403
    assert await resp.json() == REFUSED
    assert resp.headers["x-litellm-applied-guardrails"] == "openai_moderations"


async def test_messages_are_run_together_and_sent_to_the_default_model(
        with_callback, openai_api, send_chat):
    client = await with_callback()

    resp = await send_chat(client, [{"role": "system", "content": "Be brief. "},
                               {"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello"},
                               {"role": "user", "content": "bye"}])

    assert resp.status == 200
    assert openai_api.paths == ["/v1/moderations"]
    assert openai_api.last == {"model": "text-moderation-latest",
                               "input": "Be brief. HiHellobye"}
    assert openai_api.headers[-1]["authorization"] == f"Bearer {openai_api.api_key}"


async def test_model_name_setting_picks_the_model(with_callback, openai_api, send_chat):
    client = await with_callback(openai_moderations_model_name="omni-moderation-latest")

    await send_chat(client, "hello")

    assert openai_api.last["model"] == "omni-moderation-latest"


async def test_runs_alongside_the_upstream_call(with_callback, openai_api, fake_upstream, send_chat):
    # The moderation answer waits until the upstream has the call: they run side by side.
    async def after_upstream() -> None:
        await fake_upstream.request_seen.wait()
    openai_api.before_reply = after_upstream
    client = await with_callback()

    resp = await send_chat(client, "hello")

    assert resp.status == 200


async def test_extra_body_is_merged_into_the_moderation_call(with_callback, openai_api, send_chat):
    client = await with_callback()

    await send_chat(client, "hello", guardrails={"openai_moderations": {"extra_body": {
        "tag": "x", "input": "other"}}})

    assert openai_api.last == {"model": "text-moderation-latest", "tag": "x", "input": "hello"}


async def test_model_missing_from_model_list_stops_the_start(with_callback):
    with pytest.raises(StartupError) as error:
        await with_callback(openai_moderations_model_name="no-such-model")

    assert ("openai_moderations_model_name 'no-such-model' is not a model_name in model_list"
            in str(error.value))


@pytest.mark.parametrize(("status", "expected"), [(500, 502), (401, 502)])
async def test_moderation_model_error_fails_closed_naming_it(
        with_callback, openai_api, fake_upstream, send_chat, caplog, status, expected):
    openai_api.status = status
    client = await with_callback()

    resp = await send_chat(client, "hello")

    assert resp.status == expected
    message = (await resp.json())["error"]["message"]
    assert "'openai_moderations'" in message
    assert f"OpenAI moderation model 'text-moderation-latest' failed: upstream answered " \
           f"{status}" in message
    assert "OpenAI moderation model 'text-moderation-latest'" in caplog.text
    assert openai_api.api_key not in caplog.text


async def test_malformed_answer_fails_closed(with_callback, openai_api, send_chat):
    openai_api.reply = {"results": [{"flagged": "no"}]}
    client = await with_callback()

    resp = await send_chat(client, "hello")

    assert resp.status == 502
    assert ("OpenAI moderation model 'text-moderation-latest' answered an unexpected reply "
            "(results.0.flagged: bool_type)") in (await resp.json())["error"]["message"]


async def test_fail_open_and_timeout_as_a_guardrails_entry(gateway, model_list, openai_api,
                                                           fake_upstream, send_chat):
    release = asyncio.Event()
    openai_api.before_reply = release.wait
    guardrail = {"guardrail_name": "moderation", "litellm_params": {
        "guardrail": "openai_moderations", "default_on": True, "timeout": 0.1}}
    closed = await gateway({"model_list": model_list, "guardrails": [guardrail]},
                           plugins=PLUGIN)
    resp = await send_chat(closed, "hello")
    assert resp.status == 504
    message = (await resp.json())["error"]["message"]
    assert "'moderation'" in message and "no verdict from OpenAI moderation within" in message

    guardrail["litellm_params"]["on_error"] = "fail_open"
    opened = await gateway({"model_list": model_list, "guardrails": [guardrail]},
                           plugins=PLUGIN)
    resp = await send_chat(opened, "hello")
    release.set()
    assert resp.status == 200
