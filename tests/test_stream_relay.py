"""Relaying a stream: the gateway shares its event loop with every other call however fast the
upstream is, and records every call however the client ends it."""

import asyncio
import contextlib

import orjson
import pytest
from aiohttp import web

from aiohttp.test_utils import TestServer

from admin_kit import MASTER, PRICED, admin_get, admin_post, bearer
from doubles import NEW_TEXTS, PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY, Runner, create_app
from gatehouse.config import config_from_dict
from gatehouse import hookimpl
from gatehouse.proxy import calllog, pipeline

WAIT = 10  # seconds any one wait here may take before the test fails


async def test_a_fast_upstreams_long_stream_lets_other_tasks_run_between_chunks(
        gateway, fake_upstream, chat):
    # Thousands of chunks written as fast as the socket takes them: the gateway finds most of
    # them already buffered, so reading the next one never has to wait.
    fake_upstream.chunks = ["x"] * 3000
    client = await gateway({"guardrails": [guardrail("n", mode="post_call", type_="new_texts",
                                                     default_on=True)]}, plugins=PLUGINS)
    stop = asyncio.Event()

    async def other_task():
        # Another call's work: it runs whenever the loop is free, marking the chunk log.
        while not stop.is_set():
            NEW_TEXTS.append("other task ran")
            await asyncio.sleep(0)

    ticking = asyncio.create_task(other_task())
    try:
        resp = await client.post("/v1/chat/completions", json=chat(stream=True))
        assert (await resp.text()).rstrip().endswith("data: [DONE]")
    finally:
        stop.set()
        await ticking
    runs, run = [], 0
    for entry in NEW_TEXTS:
        if entry == "other task ran":
            runs.append(run)
            run = 0
        elif entry[1]:  # a chunk with text went through the gateway
            run += 1
    assert sum(runs) + run == 3000
    # However much is buffered, no more than a few dozen chunks pass between two turns of
    # everything else the loop has to do.
    assert max(runs + [run]) <= pipeline.YIELD_EVERY


class HeldUpstream:
    """An upstream that takes each request, then answers only once ``release`` is set: a
    client can leave while the gateway still waits for the upstream's first byte."""

    def __init__(self) -> None:
        self.arrived, self.release = asyncio.Event(), asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.arrived.set()
        await asyncio.wait_for(self.release.wait(), WAIT)
        reply = {"id": "chatcmpl-held", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "late words"}}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
        if not body.get("stream"):
            return web.json_response(reply)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**reply, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": "late words"},
                              "finish_reason": "stop"}]}
        with contextlib.suppress(ConnectionError):
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture
async def held_upstream(aiohttp_server):
    upstream = HeldUpstream()
    server = await aiohttp_server(upstream.app)
    yield {"model_name": "held", "params": {"model": "openai/held", "api_key": "sk-up",
                                            "api_base": str(server.make_url("/v1")),
                                            **PRICED}}, upstream
    upstream.release.set()


async def spend_rows(client, key):
    """The key's spend rows, once the call log and the spend writer have caught up."""
    gw = client.app[GATEWAY]
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        await gw.call_log.drain()
        await gw.accounting.flush()
        rows = await admin_get(client, "/spend/logs", api_key=key)
        if rows:
            return rows
        assert asyncio.get_running_loop().time() < deadline, "no spend row was written"
        await asyncio.sleep(0.05)


class AsRun(TestServer):
    """The gateway as ``gatehouse run`` serves it, where a handler outlives a client that hung
    up (aiohttp's test server cancels it instead)."""

    async def _make_runner(self, handler_cancellation: bool, **kwargs):
        return Runner(self.app, **kwargs)


@pytest.fixture
def gateway_as_run(aiohttp_client, tmp_path):
    async def make(config):
        app = create_app(config_from_dict(config, base_dir=tmp_path), extra_plugins=PLUGINS,
                         load=())
        return await aiohttp_client(AsRun(app))
    return make


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("served", ["as run", "cancelling"])
async def test_a_client_leaving_before_the_upstream_answered_is_recorded_once(
        start, gateway_as_run, held_upstream, stream, served):
    model, upstream = held_upstream
    config = {"model_list": [model]}
    if served == "as run":
        client = await gateway_as_run({**config, "general_settings": {"master_key": MASTER}})
    else:
        client = await start(config, plugins=PLUGINS)
    key = (await admin_post(client, "/key/generate", {"max_budget": 1}))["key"]
    leaving = asyncio.create_task(client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "held", "stream": stream, "messages": [{"role": "user", "content": "hello"}]}))
    await asyncio.wait_for(upstream.arrived.wait(), WAIT)
    leaving.cancel()  # the client hangs up before a byte of the reply came
    await asyncio.gather(leaving, return_exceptions=True)
    upstream.release.set()

    [row] = await spend_rows(client, key)
    [record] = RECORDS
    if served == "as run" and not stream:
        # The whole reply came while the handler still ran: billed in full, as served.
        assert row["status"] == "success" and row["completion_tokens"] == 2
        assert record["status"] == 200
        return
    assert row["status"] == "failure"
    assert record["status"] == 499
    assert record["error"]["body"] == pipeline.CLIENT_CLOSED_BODY


class SlowCallback:
    """A logging callback that takes each record only once ``go`` is set: the call log's
    worker falls behind the calls."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    @hookimpl
    async def on_success(self, record):
        await self.go.wait()


async def test_a_full_call_log_makes_calls_wait_and_drops_no_record(
        start, fake_upstream, chat, monkeypatch, caplog):
    monkeypatch.setattr(calllog, "QUEUE_LIMIT", 2)
    monkeypatch.setattr(calllog, "WARN_BACKLOG", 2)
    slow = SlowCallback()
    client = await start(plugins=[("slow", slow)])
    key = (await admin_post(client, "/key/generate", {}))["key"]
    calls = [asyncio.create_task(client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(key))) for _ in range(6)]
    try:
        deadline = asyncio.get_running_loop().time() + WAIT
        # One record in the worker's hands, two queued: the other three calls were served by
        # the upstream but wait for room before their replies go out.
        while len(fake_upstream.received) < 6 or sum(c.done() for c in calls) < 3:
            assert asyncio.get_running_loop().time() < deadline, "the calls never got this far"
            await asyncio.sleep(0.01)
        for _ in range(20):
            await asyncio.sleep(0)
        assert sum(c.done() for c in calls) == 3
        assert "call records wait to be billed" in caplog.text
    finally:
        slow.go.set()
    assert [r.status for r in await asyncio.gather(*calls)] == [200] * 6
    await client.app[GATEWAY].call_log.drain()
    await client.app[GATEWAY].accounting.flush()
    assert len(await admin_get(client, "/spend/logs", api_key=key)) == 6


def raw_stream_upstream(payloads: list[bytes]) -> web.Application:
    """An upstream that streams ``payloads`` exactly as given, each as one SSE event."""

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for payload in payloads:
            await response.write(b"data: " + payload + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", stream)
    return app


# Spaced and ordered as orjson would not write them, so a re-serialized chunk shows.
PAYLOADS = [b'{ "id": "c1", "object": "chat.completion.chunk", "model": "m",  "choices": '
            b'[{"index": 0, "delta": {"content": "caf\\u00e9 "}, "finish_reason": null}] }',
            b'{"choices": [{"finish_reason": "stop", "delta": {}, "index": 0}], "id": "c1"}']


@pytest.fixture
async def raw_upstream(aiohttp_server):
    server = await aiohttp_server(raw_stream_upstream(PAYLOADS))
    return {"model_name": "raw", "params": {"model": "openai/raw", "api_key": "sk-up",
                                            "api_base": str(server.make_url("/v1"))}}


async def test_an_unchecked_stream_is_relayed_byte_for_byte(gateway, raw_upstream):
    client = await gateway({"model_list": [raw_upstream]})
    resp = await client.post("/v1/chat/completions", json={
        "model": "raw", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert await resp.read() == b"".join(b"data: " + p + b"\n\n" for p in PAYLOADS) + (
        b"data: [DONE]\n\n")


async def test_a_checked_stream_parses_each_chunk_once(gateway, raw_upstream, monkeypatch):
    parsed: list[bytes] = []
    loads = orjson.loads

    def counting_loads(data):
        parsed.append(bytes(data) if not isinstance(data, str) else data.encode())
        return loads(data)

    monkeypatch.setattr(orjson, "loads", counting_loads)
    client = await gateway({"model_list": [raw_upstream], "guardrails": [
        guardrail("n", mode="post_call", type_="new_texts", default_on=True)]},
        plugins=PLUGINS)
    resp = await client.post("/v1/chat/completions", json={
        "model": "raw", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert "café" in (await resp.read()).decode()
    assert NEW_TEXTS[0] == (False, {(0, None): "café "})
    assert sorted(p for p in parsed if p in PAYLOADS) == sorted(PAYLOADS)
