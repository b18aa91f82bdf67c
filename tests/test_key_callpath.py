"""Keys on the call path as LiteLLM's clients see them: where the key is read from, the
errors the official ``openai`` client raises for each kind of bad key, parallel-call slots, and
per-model limits."""

import asyncio
import time
import logging

import openai
import pytest
from admin_kit import MASTER, PRICED, admin_post, bearer, both_databases
from gatehouse.app import GATEWAY


def oai(client, key):
    return openai.AsyncOpenAI(api_key=key, base_url=str(client.make_url("/v1")),
                              max_retries=0)


async def ask(client, key, model="gpt-4o"):
    async with oai(client, key) as api:
        return await api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hello"}])


@pytest.mark.parametrize("headers", [
    {"x-litellm-api-key": "Bearer {key}"}, {"x-litellm-api-key": "{key}"},
    {"Authorization": "Bearer {key}"}, {"Authorization": "bearer {key}"},
    {"Authorization": "Basic {key}"}, {"api-key": "{key}"}, {"x-api-key": "{key}"},
    {"x-goog-api-key": "{key}"}, {"Ocp-Apim-Subscription-Key": "{key}"},
    # The first header present wins, whatever the later ones carry.
    {"x-litellm-api-key": "{key}", "Authorization": "Bearer sk-wrong-0000000000000000"},
    {"Authorization": "Bearer {key}", "api-key": "sk-wrong-0000000000000000"},
])
async def test_every_header_litellm_reads_the_key_from(start, chat, headers):
    client = await start()
    made = await admin_post(client, "/key/generate", {})
    resp = await client.post("/v1/chat/completions", json=chat(), headers={
        name: value.format(key=made["key"]) for name, value in headers.items()})
    assert resp.status == 200, await resp.text()


async def test_a_malformed_authorization_header_is_litellms_401(start, chat):
    client = await start()
    made = await admin_post(client, "/key/generate", {})
    for value in (f"Token {made['key']}", made["key"], "Bearer "):
        resp = await client.post("/v1/chat/completions", json=chat(),
                                 headers={"Authorization": value,
                                          "x-api-key": made["key"]})
        assert resp.status == 401
        error = (await resp.json())["error"]
        assert error["message"] == ("Authentication Error, Malformed API Key passed in. Ensure "
                                    "Key has `Bearer ` prefix.")
        assert made["key"] not in error["message"]
    resp = await client.post("/v1/chat/completions", json=chat())
    assert (await resp.json())["error"]["message"] == \
        "Authentication Error, No api key passed in."


async def test_a_configured_key_header_replaces_the_others(start, chat):
    client = await start({"general_settings": {"litellm_key_header_name": "X-My-Key"}})
    made = await admin_post(client, "/key/generate", {}, headers={
        "X-My-Key": f"Bearer {MASTER}"})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-My-Key": made["key"]})
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401


@both_databases
async def test_the_openai_client_sees_litellms_key_errors(start, fake_upstream):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    with pytest.raises(openai.AuthenticationError) as err:
        await ask(client, "not-a-virtual-key-at-all")
    assert err.value.body["message"] == (
        "Authentication Error, LiteLLM Virtual Key expected. Received=not...-all, expected "
        "to start with 'sk-'.")
    with pytest.raises(openai.AuthenticationError) as err:
        await ask(client, "sk-never-issued-abcd")
    assert (err.value.body["type"], err.value.body["param"]) == ("token_not_found_in_db", "key")
    assert err.value.body["message"].startswith(
        "Authentication Error, Invalid proxy server token passed. Received API Key = "
        "sk-...abcd, Key Hash (Token) =")

    blocked = await admin_post(client, "/key/generate", {"blocked": True})
    with pytest.raises(openai.AuthenticationError) as err:
        await ask(client, blocked["key"])
    assert "Key is blocked" in err.value.body["message"]

    expired = await admin_post(client, "/key/generate", {"duration": "0s"})
    with pytest.raises(openai.BadRequestError) as err:
        await ask(client, expired["key"])
    assert err.value.body["type"] == "expired_key"

    spent = await admin_post(client, "/key/generate", {"max_budget": 0.001, "spend": 0.002})
    with pytest.raises(openai.BadRequestError) as err:
        await ask(client, spent["key"])
    assert (err.value.body["type"], err.value.body["param"]) == ("budget_exceeded", None)
    assert err.value.body["message"] == \
        "Budget has been exceeded! Current cost: 0.002, Max budget: 0.001"
    # Info routes still answer a key over its budget.
    resp = await client.get("/key/info", headers=bearer(spent["key"]))
    assert resp.status == 200


@both_databases
async def test_max_parallel_requests_holds_calls_in_flight_to_the_limit(start, fake_upstream):
    client = await start()
    made = await admin_post(client, "/key/generate", {"max_parallel_requests": 1})
    fake_upstream.delay = 0.5
    first = asyncio.create_task(ask(client, made["key"]))
    while not fake_upstream.received:
        await asyncio.sleep(0.01)
    with pytest.raises(openai.RateLimitError) as err:
        await ask(client, made["key"])
    assert err.value.body["message"].startswith(
        f"Rate limit exceeded for api_key: {made['token']}. Limit type: max_parallel_requests. "
        f"Current limit: 1, Remaining: 0. Limit resets at: ")
    assert (err.value.body["type"], err.value.body["param"]) == ("None", "None")
    headers = err.value.response.headers
    assert (headers["retry-after"], headers["rate_limit_type"]) == ("60", "max_parallel_requests")
    await first
    fake_upstream.delay = 0
    # The slot came back when the call ended -- a failed call's too.
    await ask(client, made["key"])
    fake_upstream.fail(500, {"error": {"message": "down"}})
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await ask(client, made["key"])
    zero = await admin_post(client, "/key/generate", {"max_parallel_requests": 0})
    with pytest.raises(openai.RateLimitError):
        await ask(client, zero["key"])


async def test_a_streamed_call_holds_its_slot_until_the_stream_ends(start, fake_upstream):
    client = await start()
    made = await admin_post(client, "/key/generate", {"max_parallel_requests": 1})
    async with oai(client, made["key"]) as api:
        for _ in range(3):
            stream = await api.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
            async for _chunk in stream:
                pass


async def test_per_model_request_and_budget_limits(start, fake_upstream):
    client = await start({"model_list": [
        fake_upstream.model_entry("gpt-4o", **PRICED),
        {"model_name": "mock-echo", "params": {"model": "mock/echo"}}]})
    made = await admin_post(client, "/key/generate", {
        "model_rpm_limit": {"mock-echo": 1},
        "model_max_budget": {"gpt-4o": {"budget_limit": 0.001, "time_period": "1d"}}})
    await ask(client, made["key"], "mock-echo")
    with pytest.raises(openai.RateLimitError) as err:
        await ask(client, made["key"], "mock-echo")
    assert err.value.body["message"].startswith(
        f"Rate limit exceeded for model_per_key: {made['token']}:mock-echo. Limit type: "
        f"requests.")
    await ask(client, made["key"], "gpt-4o")
    await client.app[GATEWAY].call_log.drain()
    with pytest.raises(openai.BadRequestError) as err:
        await ask(client, made["key"], "gpt-4o")
    assert err.value.body["type"] == "budget_exceeded"
    assert "model=gpt-4o" in err.value.body["message"]


async def test_crossing_a_soft_budget_is_logged(start, fake_upstream, caplog):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    made = await admin_post(client, "/key/generate", {"soft_budget": 0.015,
                                                      "key_alias": "soft"})
    caplog.set_level(logging.WARNING, logger="gatehouse.spend")
    for _ in range(3):
        await ask(client, made["key"])
        await client.app[GATEWAY].call_log.drain()
    crossed = [r.getMessage() for r in caplog.records if "soft budget" in r.getMessage()]
    assert len(crossed) == 1
    assert made["key"] not in crossed[0]


async def test_public_routes_ignore_a_malformed_authorization_header(start):
    client = await start()
    resp = await client.get("/health/liveliness", headers={"Authorization": "Token x"})
    assert resp.status == 200


async def test_a_per_model_token_limit_refuses_once_the_window_is_used(start):
    client = await start()
    # Windows are calendar minutes; a run that straddles two proves nothing, so it is run
    # again with a fresh key.
    for _ in range(2):
        made = await admin_post(client, "/key/generate",
                                {"model_tpm_limit": {"mock-echo": 1}})
        minute = int(time.time() // 60)
        await ask(client, made["key"], "mock-echo")
        await client.app[GATEWAY].call_log.drain()
        await ask(client, made["key"], "gpt-4o")  # another model: not limited
        try:
            await ask(client, made["key"], "mock-echo")
            refused = None
        except openai.RateLimitError as err:
            refused = err
        if int(time.time() // 60) == minute:
            break
    assert refused is not None
    assert "Limit type: tokens. Current limit: 1" in refused.body["message"]
