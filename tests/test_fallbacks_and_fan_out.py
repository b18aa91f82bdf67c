"""Fallbacks: a call whose model fails upstream is answered by the next model in line -- from
the request's ``fallbacks``, ``router_settings`` / ``litellm_settings`` (general,
context-window and content-policy lists, ``default_fallbacks``) -- and the reply's headers name
the model that answered; driven by the official ``openai`` client. And a comma list of models:
one call each, answered as an array, or the fastest alone."""

import openai
import pytest

from admin_kit import admin_post, bearer
from gatehouse.testing import GATEWAY, FakeUpstream

CHAT = [{"role": "user", "content": "hello"}]
CONTEXT_WINDOW = {"error": {"message": "This model's maximum context length is 8192 tokens",
                            "type": "invalid_request_error", "param": "messages",
                            "code": "context_length_exceeded"}}


@pytest.fixture
async def backup(aiohttp_server):
    """A second upstream, serving the ``backup`` model."""
    second = FakeUpstream()
    second.url = str((await aiohttp_server(second.app)).make_url("/v1"))
    second.reply = "Backup here."
    return second


def models(fake_upstream, backup, **extra):
    """``primary`` on the fake upstream, which a test makes fail, and ``backup``."""
    return {"model_list": [fake_upstream.model_entry("primary"), backup.model_entry("backup")],
            **extra}


def oai(client, key="anything"):
    return openai.AsyncOpenAI(api_key=key, base_url=str(client.make_url("/v1")), max_retries=0)


async def test_configured_fallback_answers_and_the_headers_name_it(gateway, fake_upstream,
                                                                  backup):
    fake_upstream.fail(500)
    client = await gateway(models(fake_upstream, backup,
                                  router_settings={"fallbacks": [{"primary": ["backup"]}]}))
    backup_id = client.app[GATEWAY].router.routes.groups["backup"][0].id
    async with oai(client) as api:
        raw = await api.chat.completions.with_raw_response.create(model="primary",
                                                                  messages=CHAT)
        assert raw.parse().choices[0].message.content == "Backup here."
        assert raw.headers["x-litellm-model-group"] == "backup"
        assert raw.headers["x-litellm-model-id"] == backup_id
        assert raw.headers["x-litellm-model-api-base"] == backup.url
        assert raw.headers["x-litellm-attempted-fallbacks"] == "1"
        # A stream falls back too: nothing of it had been sent.
        stream = await api.chat.completions.create(model="primary", messages=CHAT,
                                                   stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Backup here."
    assert [b["model"] for b in fake_upstream.received] == ["primary", "primary"]
    assert [b["model"] for b in backup.received] == ["backup", "backup"]


async def test_request_fallbacks_are_tried_in_order_and_not_sent_upstream(gateway,
                                                                         fake_upstream, backup):
    fake_upstream.fail(503)
    client = await gateway(models(fake_upstream, backup))
    async with oai(client) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="primary", messages=CHAT, extra_body={"fallbacks": [
                "not-served", {"model": "primary", "temperature": 0.5}, "backup"]})
    assert raw.parse().choices[0].message.content == "Backup here."
    assert raw.headers["x-litellm-attempted-fallbacks"] == "3"
    # A fallback's own params go with it alone.
    assert fake_upstream.last["temperature"] == 0.5 and "temperature" not in backup.last
    assert "fallbacks" not in backup.last and "fallbacks" not in fake_upstream.last


async def test_when_every_fallback_fails_the_first_error_is_answered(gateway, fake_upstream,
                                                                    backup):
    fake_upstream.fail(500, {"error": {"message": "primary is down", "type": "server_error",
                                       "param": None, "code": None}})
    backup.fail(429)
    client = await gateway(models(fake_upstream, backup, litellm_settings={
        "fallbacks": [{"primary": ["backup"]}]}))
    async with oai(client) as api:
        with pytest.raises(openai.InternalServerError) as err:
            await api.chat.completions.create(model="primary", messages=CHAT)
    assert err.value.body["message"] == "primary is down"
    assert len(backup.received) == 1


async def test_a_bad_request_is_not_retried_but_a_context_window_error_has_its_own_list(
        gateway, fake_upstream, backup):
    client = await gateway(models(fake_upstream, backup, router_settings={
        "fallbacks": [{"primary": ["backup"]}],
        "context_window_fallbacks": [{"primary": ["backup"]}]}))
    fake_upstream.fail(400, {"error": {"message": "Invalid value for 'temperature'",
                                       "type": "invalid_request_error", "param": None,
                                       "code": None}})
    async with oai(client) as api:
        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(model="primary", messages=CHAT)
        assert backup.received == []
        fake_upstream.fail(400, CONTEXT_WINDOW)
        reply = await api.chat.completions.create(model="primary", messages=CHAT)
    assert reply.choices[0].message.content == "Backup here."


async def test_a_context_window_error_does_not_use_the_general_list(gateway, fake_upstream,
                                                                   backup):
    fake_upstream.fail(400, CONTEXT_WINDOW)
    client = await gateway(models(fake_upstream, backup, litellm_settings={
        "default_fallbacks": ["backup"]}))
    async with oai(client) as api:
        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(model="primary", messages=CHAT)
        assert backup.received == []
        fake_upstream.fail(502)
        # default_fallbacks serve a model without fallbacks of its own.
        reply = await api.chat.completions.create(model="primary", messages=CHAT)
    assert reply.choices[0].message.content == "Backup here."


async def test_a_key_may_only_fall_back_to_models_it_may_call(start, fake_upstream, backup):
    client = await start(models(fake_upstream, backup))
    key = (await admin_post(client, "/key/generate", {"models": ["primary"]}))["key"]
    async with oai(client, key) as api:
        with pytest.raises(openai.AuthenticationError) as err:
            await api.chat.completions.create(model="primary", messages=CHAT,
                                              extra_body={"fallbacks": ["backup"]})
        with pytest.raises(openai.BadRequestError) as bad:
            await api.chat.completions.create(model="primary", messages=CHAT,
                                              extra_body={"fallbacks": "backup"})
    assert err.value.body["type"] == "key_model_access_denied"
    assert err.value.body["message"].endswith("Tried to access backup")
    assert bad.value.body["param"] == "fallbacks"
    assert fake_upstream.received == [] and backup.received == []


async def test_models_listing_shows_fallbacks_with_include_metadata(start, fake_upstream,
                                                                   backup):
    client = await start(models(fake_upstream, backup, router_settings={
        "fallbacks": [{"primary": ["backup"]}],
        "context_window_fallbacks": [{"backup": ["primary"]}]}))
    key = (await admin_post(client, "/key/generate", {}))["key"]

    async def listed(**params):
        resp = await client.get("/v1/models", params=params, headers=bearer(key))
        assert resp.status == 200, await resp.text()
        return {m["id"]: m.get("metadata") for m in (await resp.json())["data"]}

    assert await listed() == {"primary": None, "backup": None}
    assert await listed(include_metadata="true") == {
        "primary": {"fallbacks": ["backup"]}, "backup": {"fallbacks": []}}
    assert await listed(include_metadata="true", fallback_type="context_window") == {
        "primary": {"fallbacks": []}, "backup": {"fallbacks": ["primary"]}}
    resp = await client.get("/v1/models", params={"include_metadata": "true",
                                                  "fallback_type": "nope"}, headers=bearer(key))
    assert resp.status == 400


async def test_a_comma_list_of_models_fans_out_and_answers_in_order(start, fake_upstream,
                                                                   backup):
    client = await start(models(fake_upstream, backup))
    key = (await admin_post(client, "/key/generate", {}))["key"]
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "primary, backup", "messages": CHAT})
    assert resp.status == 200, await resp.text()
    replies = await resp.json()
    assert [r["choices"][0]["message"]["content"] for r in replies] == [
        "Hello from the fake upstream.", "Backup here."]
    assert "x-litellm-model-id" not in resp.headers
    assert resp.headers["x-litellm-key-spend"] == "0.0"
    assert fake_upstream.last["model"] == "primary" and backup.last["model"] == "backup"

    # A failed model is its error body in the array.
    fake_upstream.fail(500)
    replies = await (await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "primary,backup", "messages": CHAT})).json()
    assert "error" in replies[0] and replies[1]["choices"][0]["message"]["content"]


async def test_fastest_response_answers_the_first_model_to_finish(start, fake_upstream,
                                                                 backup):
    client = await start(models(fake_upstream, backup))
    key = (await admin_post(client, "/key/generate", {}))["key"]
    fake_upstream.fail(500)  # fails first: the fastest reply is the first success
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "primary,backup", "messages": CHAT, "fastest_response": True})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == "Backup here."
    assert resp.headers["x-litellm-fastest_response_batch_completion"] == "True"
    assert "fastest_response" not in backup.last


async def test_every_model_of_a_comma_list_is_access_checked_first(start, fake_upstream,
                                                                  backup):
    client = await start(models(fake_upstream, backup))
    key = (await admin_post(client, "/key/generate", {"models": ["primary"]}))["key"]
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "primary,backup", "messages": CHAT})
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "key_model_access_denied"
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "primary,primary", "messages": CHAT, "stream": True})
    assert resp.status == 400
    assert fake_upstream.received == [] and backup.received == []
