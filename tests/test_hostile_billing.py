"""Hostile clients and billing: every call is billed whatever way it ends, whatever the client
sent, however many calls arrive at once."""

import asyncio
import time

import orjson
import pytest
from aiohttp import web

from admin_kit import PRICED, admin_get, admin_post, bearer
from gatehouse.app import GATEWAY

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
