"""Hostile clients and billing: every call is billed whatever way it ends, whatever the client
sent, however many calls arrive at once."""

import asyncio
import time

import orjson
import pytest
from aiohttp import web

from admin_kit import PRICED, admin_get, admin_post, bearer, both_databases
from gatehouse.access import accounting
from gatehouse.app import GATEWAY
from gatehouse.store.backend import StoreUnavailable
from gatehouse.store.cache import RedisCache

WAIT = 10  # seconds any one wait here may take before the test fails


async def until(condition, timeout=WAIT):
    """Until the awaitable ``condition()`` is true; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def slow_upstream(aiohttp_server):
    """An upstream that streams one chunk, then waits for ``release`` before streaming the rest
    (and its usage chunk), so a client can leave mid-stream."""
    release = asyncio.Event()
    piece = "word " * 10  # 50 characters: about 12 tokens a chunk

    async def handle(request):
        body = orjson.loads(await request.read())
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "model": body["model"]}
        try:
            for i in range(200):
                chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece},
                                              "finish_reason": None}]}
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
                if i == 0:
                    await asyncio.wait_for(release.wait(), WAIT)
                else:
                    await asyncio.sleep(0.01)
            usage = {"prompt_tokens": 5, "completion_tokens": 2000, "total_tokens": 2005}
            await response.write(b"data: " + orjson.dumps({**base, "choices": [],
                                                           "usage": usage}) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:
            pass  # the gateway stopped reading: what the test wants
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    server = await aiohttp_server(app)
    yield str(server.make_url("/v1")), release
    release.set()


async def aborted_stream(client, key, release):
    """Read one chunk of a stream, then hang up; the upstream goes on only after that."""
    release.clear()
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "slow", "stream": True, "messages": [{"role": "user", "content": "hello"}]}),
        WAIT)
    assert resp.status == 200
    line = await asyncio.wait_for(resp.content.readline(), WAIT)
    assert line.startswith(b"data: {")
    request_id = resp.headers["x-request-id"]
    resp.close()  # drops the connection
    release.set()
    return request_id


async def spend_row(client, request_id):
    gw = client.app[GATEWAY]
    rows = []

    async def written():
        await gw.call_log.drain()
        await gw.accounting.flush()
        rows[:] = await admin_get(client, "/spend/logs", request_id=request_id)
        return bool(rows)

    await until(written)
    return rows[0]


async def test_a_stream_the_client_leaves_is_billed_for_what_the_upstream_sent(
        start, slow_upstream):
    url, release = slow_upstream
    client = await start({"model_list": [{"model_name": "slow", "params": {
        "model": "openai/slow", "api_base": url, "api_key": "sk-up", **PRICED}}]})
    key = (await admin_post(client, "/key/generate", {"max_budget": 0.04}))["key"]

    row = await spend_row(client, await aborted_stream(client, key, release))
    # At least the chunk the client read (about 12 tokens at 0.002) and the prompt.
    assert row["completion_tokens"] >= 12
    assert row["spend"] >= 12 * 0.002
    assert row["status"] == "failure"

    # A second one uses up the budget of 0.04: the next call is refused.
    await spend_row(client, await aborted_stream(client, key, release))
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "slow", "messages": [{"role": "user", "content": "hello"}]})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "budget_exceeded"


class Nested:
    def __init__(self, depth):
        self.depth = depth


def nested(depth):
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


def dumps_deep(value):
    if isinstance(value, Nested):
        return "[" * value.depth + '"x"' + "]" * value.depth
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}": {dumps_deep(v)}' for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps_deep(v) for v in value) + "]"
    return orjson.dumps(value).decode()


@both_databases
@pytest.mark.parametrize("field, value, needle", [
    # Deeper than 255 the whole body is refused as too deep (tests/test_hostile_input.py);
    # metadata has a tighter limit of its own.
    ("metadata", {"spend_logs_metadata": Nested(40)}, "nested more than"),
    ("metadata", {"tags": [Nested(200)]}, "nested more than"),
    ("metadata", {"spend_logs_metadata": {"note": "x" * 70_000}}, "larger than"),
    ("metadata", {"tags": ["a\u0000b"]}, "NUL"),
    ("user", "\u0000", "NUL"),
])
async def test_what_the_spend_row_could_not_store_is_refused_at_the_edge(
        start, fake_upstream, chat, field, value, needle):
    client = await start()
    key = (await admin_post(client, "/key/generate", {}))["key"]
    # Written by hand: JSON encoders stop short of the nesting a hostile client sends.
    raw = orjson.dumps(chat()).decode()[:-1] + f', "{field}": {dumps_deep(value)}}}'
    resp = await client.post("/v1/chat/completions", data=raw,
                             headers={**bearer(key), "content-type": "application/json"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert needle in error["message"] and error["param"] == field
    assert not fake_upstream.received  # nothing was served unbilled


@both_databases
async def test_a_spend_row_the_database_refuses_is_stored_without_its_free_form_fields(
        start, fake_upstream, chat, caplog):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    key = (await admin_post(client, "/key/generate", {}))["key"]
    resp = await client.post("/v1/chat/completions", headers=bearer(key),
                             json=chat(user="bob", metadata={"tags": ["t"]}))
    assert resp.status == 200
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    # What a plugin could still put in a row after the edge checks: neither back end stores
    # JSON nested this deep, nor Postgres a NUL in text.
    [row] = gw.accounting.pending
    row["metadata"]["spend_logs_metadata"] = nested(300)
    row["user_id"] = "\u0000"
    row["tags"] = ["\u0000"]
    await gw.accounting.flush()

    [stored] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert stored["spend"] > 0 and stored["total_tokens"] > 0
    assert stored["user"] is None and stored["request_tags"] == []
    assert stored["metadata"]["spend_logs_metadata"] is None
    assert "stored without" in caplog.text


# Mock replies echo the prompt: "hello" is 1 prompt token (estimated and counted alike), and
# "You said: hello" 3 completion tokens, which max_tokens=3 lets the estimate know in advance.
MOCK = {"model_name": "priced", "params": {
    "model": "mock/echo", "input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}
COST = 0.007


@pytest.mark.parametrize("gateways", [1, 2])
async def test_concurrent_calls_cannot_all_pass_one_budget_check(
        redis_url, redis_namespace, start, gateways):
    settings = {"redis_url": redis_url, "redis_namespace": redis_namespace}
    clients = [await start({"model_list": [MOCK], "general_settings": settings})
               for _ in range(gateways)]
    # Worth 9.5 calls: ten start within it (the tenth may finish past it), none after.
    key = (await admin_post(clients[0], "/key/generate", {"max_budget": 9.5 * COST}))["key"]

    async def call(client):
        resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
            "model": "priced", "max_tokens": 3,
            "messages": [{"role": "user", "content": "hello"}]})
        return resp.status

    statuses = await asyncio.wait_for(asyncio.gather(
        *(call(clients[i % gateways]) for i in range(200))), WAIT * 3)
    assert statuses.count(200) == 10
    assert statuses.count(400) == 190

    # Refused calls gave back what they held: the budget counts the ten calls alone.
    for client in clients:
        await client.app[GATEWAY].call_log.drain()
        await client.app[GATEWAY].accounting.flush()
    [info] = [await admin_get(clients[0], "/key/info", key=key)]
    assert info["info"]["spend"] == pytest.approx(10 * COST)
    counter = await clients[0].app[GATEWAY].cache.value(f"spend:key:{info['key']}")
    assert counter == pytest.approx(10 * COST)


async def test_a_burst_larger_than_the_redis_pool_is_not_taken_for_an_outage(
        redis_url, redis_namespace):
    cache = RedisCache(redis_url, redis_namespace)
    try:
        totals = await asyncio.wait_for(asyncio.gather(
            *(cache.incr("burst", 1, ttl=60) for _ in range(300))), WAIT)
        # Counted in Redis, shared with every gateway: not on this gateway's own counters.
        assert cache.reachable
        assert max(totals) == 300
    finally:
        await cache.close()


async def test_a_spend_backlog_at_its_bound_refuses_calls_until_the_database_takes_it(
        start, fake_upstream, chat, monkeypatch, caplog):
    monkeypatch.setattr(accounting, "MAX_PENDING", 4)
    monkeypatch.setattr(accounting, "WARN_PENDING", 2)
    client = await start()
    gw = client.app[GATEWAY]
    key = (await admin_post(client, "/key/generate", {}))["key"]

    async def database_down(rows):
        raise StoreUnavailable("database down")

    write_spend = gw.store.write_spend
    monkeypatch.setattr(gw.store, "write_spend", database_down)
    replies = []
    for _ in range(6):
        replies.append(await client.post("/v1/chat/completions", json=chat(),
                                         headers=bearer(key)))
        await gw.call_log.drain()
    assert [r.status for r in replies] == [200] * 4 + [503] * 2
    assert replies[-1].headers["retry-after"]
    assert "spend rows wait" in caplog.text
    assert len(fake_upstream.received) == 4  # nothing served that could not be recorded

    monkeypatch.setattr(gw.store, "write_spend", write_spend)
    assert await gw.accounting.flush()
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
    assert resp.status == 200
    await gw.call_log.drain()
    await gw.accounting.flush()
    rows = await admin_get(client, "/spend/logs", api_key=key)
    assert sorted(r["status"] for r in rows) == ["success"] * 5
