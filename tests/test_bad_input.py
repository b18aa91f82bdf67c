"""Every client mistake gets a clear OpenAI-shaped error with the right status: never a
traceback, never HTML, never a 500, and nothing reaches the upstream."""

import asyncio
import contextlib
import logging

import orjson
import pytest
from aiohttp import web

from admin_kit import MASTER
from gatehouse import app as app_module
from gatehouse.app import Runner, create_app
from gatehouse.config import config_from_dict


def assert_openai_error(body, status):
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["code"] == str(status)
    assert "Traceback" not in str(body)


@pytest.mark.parametrize("raw,needle", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "JSON object"),
    (b'"text"', "JSON object"),
])
async def test_unparseable_bodies(gateway, fake_upstream, raw, needle):
    client = await gateway()
    resp = await client.post("/v1/chat/completions", data=raw,
                             headers={"content-type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body, 400)
    assert needle in body["error"]["message"]
    assert fake_upstream.received == []


@pytest.mark.parametrize("path,body,param,needle", [
    # Worded as LiteLLM's router answers a model it cannot route.
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, None,
     "litellm.BadRequestError: You passed in model=None."),
    ("/v1/chat/completions", {"model": "gpt-4o"}, "messages",
     "litellm.BadRequestError: OpenAIException - Missing required parameter: 'messages'"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": []}, "messages", "messages"),
    ("/v1/chat/completions", {"model": 5, "messages": [{"role": "user"}]}, "model", "model"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": "hi"}, "messages", "messages"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"content": "x"}]}, "messages",
     "messages[0].role"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": 3}]},
     "messages", "messages[0].content"),
    ("/v1/chat/completions", {"model": "gpt-4o", "stream": "yes",
                              "messages": [{"role": "user", "content": "x"}]}, "stream",
     "stream"),
    ("/v1/chat/completions", {"model": "gpt-4o", "metadata": "x",
                              "messages": [{"role": "user", "content": "x"}]}, "metadata",
     "metadata"),
    # Text guardrails read must have the shape they read (a malformed one once crashed the
    # walker, and with fail_open that let the text past every guardrail).
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "assistant", "content": None, "tool_calls": {"function": {"arguments": "x"}}}]},
     "messages", "messages[0].tool_calls"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "assistant", "tool_calls": [{"function": {"arguments": {"a": 1}}}]}]},
     "messages", "messages[0].tool_calls[0].function.arguments"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "x", "name": ["bob"]}]}, "messages", "messages[0].name"),
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": [
        {"role": "assistant", "function_call": "call it"}]}, "messages",
     "messages[0].function_call"),
    ("/v1/completions", {"model": "gpt-4o"}, "prompt", "Missing required parameter: 'prompt'"),
    ("/v1/completions", {"model": "gpt-4o", "prompt": {"a": 1}}, "prompt", "prompt"),
    ("/v1/embeddings", {"model": "gpt-4o"}, "input", "Missing required parameter: 'input'"),
    ("/v1/embeddings", {"model": "gpt-4o", "input": 3.5}, "input", "input"),
])
async def test_missing_and_mistyped_fields(gateway, fake_upstream, path, body, param, needle):
    client = await gateway()
    resp = await client.post(path, json=body)
    assert resp.status == 400
    error = await resp.json()
    assert_openai_error(error, 400)
    assert error["error"]["param"] == param
    assert needle in error["error"]["message"]
    assert fake_upstream.received == []


async def test_unknown_model(gateway, fake_upstream):
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["message"].startswith(
        "litellm.BadRequestError: You passed in model=gpt-9.")
    assert body["error"]["param"] is None
    assert body["error"]["code"] == "400"


async def test_body_over_the_limit_is_413(gateway, fake_upstream):
    client = await gateway({"general_settings": {"max_request_size_mb": 0.01}})
    big = "x" * 20_000
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": big}]})
    assert resp.status == 413
    body = await resp.json()
    assert_openai_error(body, 413)
    assert "0.01 MB" in body["error"]["message"]
    assert fake_upstream.received == []


async def test_wrong_method_is_json_405(gateway):
    client = await gateway()
    resp = await client.get("/v1/chat/completions")
    assert resp.status == 405
    assert_openai_error(await resp.json(), 405)
    assert "POST" in resp.headers["Allow"]


async def test_gateway_survives_bad_input_storm(gateway, fake_upstream, chat):
    client = await gateway()
    for raw in (b"\xff\xfe", b"{", b"null", b"{}", b'{"model": null}'):
        resp = await client.post("/v1/chat/completions", data=raw)
        assert resp.status == 400
        assert resp.content_type == "application/json"
    assert (await client.post("/v1/chat/completions", json=chat())).status == 200


@contextlib.asynccontextmanager
async def serving(tmp_path):
    """The port of a gateway served as the CLI serves it."""
    app = create_app(config_from_dict({"model_list": [
        {"model_name": "mock-echo", "params": {"model": "mock/echo"}}]}, base_dir=tmp_path))
    runner = Runner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.fixture
async def served(tmp_path):
    async with serving(tmp_path) as port:
        yield port


SECRET = b"sk-do-not-echo-4f2a"


@pytest.mark.parametrize("raw", [
    b"BREW / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET + b"\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + SECRET,
    b"GET /" + SECRET + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET + b"b" * 17000 + b"\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Type: " + SECRET + b"\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + SECRET +
    b"\r\n\r\n{}",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Key" + SECRET + b" no-colon\r\n\r\n",
], ids=["method", "tls", "url", "header", "duplicate-content-type", "content-length",
        "header-line"])
async def test_requests_the_http_parser_refuses_get_one_quiet_openai_error(served, raw,
                                                                           caplog):
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 ") or head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    assert_openai_error(orjson.loads(body), 400)
    assert SECRET not in answer
    refused = [r for r in caplog.records if r.name.startswith(("gatehouse", "aiohttp"))]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert refused[0].exc_info is None and SECRET.decode() not in refused[0].getMessage()


async def read_reply(reader):
    """(head, body) of one HTTP reply with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    return head, await reader.readexactly(length)


async def test_a_trickled_body_times_out_with_a_408(start, fake_upstream):
    client = await start({"general_settings": {"request_body_timeout": 0.5}})
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + MASTER.encode() + b"\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")

    async def trickle():
        while True:
            await asyncio.sleep(0.1)
            writer.write(b" ")

    trickling = asyncio.ensure_future(trickle())
    try:
        head, raw = await asyncio.wait_for(read_reply(reader), 10)
        assert head.startswith(b"HTTP/1.1 408 ")
        body = orjson.loads(raw)
    finally:
        trickling.cancel()
        writer.close()
    assert_openai_error(body, 408)
    assert "request_body_timeout" in body["error"]["message"]
    assert fake_upstream.received == []



async def test_an_idle_connection_is_closed_after_the_keep_alive(tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "KEEPALIVE_TIMEOUT", 0.5)  # 75 s, as web.run_app's
    async with serving(tmp_path) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = await read_reply(reader)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
