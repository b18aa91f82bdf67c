"""The OpenAI-compatible routes, the providers, and upstream failures."""

import asyncio

import orjson
import pytest

from admin_kit import ADMIN
from gatehouse.testing import FakeUpstream

PREFIXES = ["", "/v1"]


def sse_payloads(text):
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_chat_completion_through_upstream(gateway, fake_upstream, chat, prefix):
    fake_upstream.reply = "Paris."
    client = await gateway()
    resp = await client.post(f"{prefix}/chat/completions", json=chat("Capital of France?"))
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "Paris."
    sent = fake_upstream.last
    assert sent["model"] == "gpt-4o"
    assert sent["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert fake_upstream.headers[-1]["Authorization"] == "Bearer sk-fake-upstream-key"
    assert resp.headers["x-request-id"]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_chat_stream_is_relayed_as_sse(gateway, fake_upstream, chat, prefix):
    fake_upstream.chunks = ["Hel", "lo"]
    client = await gateway()
    resp = await client.post(f"{prefix}/chat/completions", json=chat(stream=True))
    assert resp.status == 200
    assert resp.content_type == "text/event-stream"
    payloads = sse_payloads(await resp.text())
    assert payloads[-1] == "[DONE]"
    content = "".join(orjson.loads(p)["choices"][0]["delta"].get("content", "")
                      for p in payloads[:-1])
    assert content == "Hello"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_completions_and_embeddings(gateway, fake_upstream, prefix):
    fake_upstream.reply = "done"
    client = await gateway()
    resp = await client.post(f"{prefix}/completions", json={"model": "gpt-4o", "prompt": "x"})
    assert (await resp.json())["choices"][0]["text"] == "done"
    resp = await client.post(f"{prefix}/embeddings",
                             json={"model": "gpt-4o", "input": ["a", "b"]})
    body = await resp.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert fake_upstream.last["input"] == ["a", "b"]


async def test_completions_stream(gateway, fake_upstream):
    fake_upstream.chunks = ["a", "b"]
    client = await gateway()
    resp = await client.post("/v1/completions",
                             json={"model": "gpt-4o", "prompt": "x", "stream": True})
    payloads = sse_payloads(await resp.text())
    assert "".join(orjson.loads(p)["choices"][0]["text"] for p in payloads[:-1]) == "ab"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_models_lists_model_names(gateway, prefix):
    client = await gateway()
    body = await (await client.get(f"{prefix}/models")).json()
    assert [m["id"] for m in body["data"]] == ["gpt-4o", "mock-echo"]


async def test_health_routes(gateway):
    client = await gateway()
    assert (await client.get("/health/liveliness")).status == 200
    body = await (await client.get("/health/readiness")).json()
    assert body["status"] == "healthy"


async def test_mock_response_answers_without_upstream(gateway, fake_upstream, chat):
    client = await gateway()
    resp = await client.post("/v1/chat/completions",
                             json=chat(mock_response="This is a mock response"))
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "This is a mock response"
    assert fake_upstream.received == []


async def test_mock_response_streams(gateway, fake_upstream, chat):
    client = await gateway()
    resp = await client.post("/v1/chat/completions",
                             json=chat(mock_response="one two three", stream=True))
    payloads = sse_payloads(await resp.text())
    text = "".join(orjson.loads(p)["choices"][0]["delta"].get("content", "")
                   for p in payloads[:-1])
    assert text == "one two three"
    assert len(payloads) > 3
    assert fake_upstream.received == []


async def test_mock_provider_echoes(gateway):
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json={
        "model": "mock-echo", "messages": [{"role": "user", "content": "ping"}]})
    assert (await resp.json())["choices"][0]["message"]["content"] == "You said: ping"


async def test_upstream_error_status_and_body_pass_through(gateway, fake_upstream, chat):
    error = {"error": {"message": "Rate limit reached", "type": "requests",
                       "param": None, "code": "rate_limit_exceeded"}}
    fake_upstream.fail(429, error)
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 429
    assert await resp.json() == error


async def test_upstream_html_error_becomes_openai_shape(gateway, fake_upstream, chat):
    fake_upstream.fail(503, b"<html>bad gateway</html>", content_type="text/html")
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["message"] == "upstream answered HTTP 503"
    assert "<html>" not in await resp.text()


async def test_upstream_refused_is_502(gateway, unused_tcp_port, chat):
    client = await gateway({"model_list": [{"model_name": "gpt-4o", "params": {
        "model": "openai/gpt-4o", "api_base": f"http://127.0.0.1:{unused_tcp_port}/v1",
        "api_key": "sk-must-not-leak"}}]})
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 502
    body = await resp.json()
    assert "unreachable" in body["error"]["message"]
    assert "sk-must-not-leak" not in await resp.text()


async def test_upstream_timeout_is_504(gateway, fake_upstream, chat):
    fake_upstream.delay = 5
    client = await gateway({"model_list": [fake_upstream.model_entry("gpt-4o", timeout=0.2)]})
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 504
    assert (await resp.json())["error"]["type"] == "timeout"


async def test_deployments_of_one_model_share_the_load(gateway, fake_upstream, aiohttp_server,
                                                       chat):
    second = FakeUpstream()
    second.url = str((await aiohttp_server(second.app)).make_url("/v1"))
    client = await gateway({"model_list": [fake_upstream.model_entry("gpt-4o"),
                                           second.model_entry("gpt-4o")]})
    for _ in range(4):
        assert (await client.post("/v1/chat/completions", json=chat())).status == 200
    assert len(fake_upstream.received) == len(second.received) == 2


async def test_client_disconnect_mid_stream_closes_upstream(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["x"] * 5

    release = asyncio.Event()

    async def slow(body):
        await release.wait()

    fake_upstream.before_reply = slow
    client = await gateway()
    task = asyncio.ensure_future(client.post("/v1/chat/completions", json=chat(stream=True)))
    await fake_upstream.request_seen.wait()
    task.cancel()
    release.set()
    await asyncio.gather(task, return_exceptions=True)
    # The gateway keeps serving.
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 200


async def test_route_without_version_prefix_unknown_is_json_404(gateway):
    client = await gateway()
    resp = await client.get("/v2/nothing")
    assert resp.status == 404
    assert (await resp.json())["error"]["type"] == "not_found_error"


async def test_master_key_guards_routes_but_not_health(gateway, chat):
    client = await gateway({"general_settings": {"master_key": "sk-a-long-master-key-1"}})
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "auth_error"
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    assert "sk-a-long-master-key-1" not in await resp.text()
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"Authorization": "Bearer sk-a-long-master-key-1"})
    assert resp.status == 200
    assert (await client.get("/health/liveliness")).status == 200



async def test_upstream_malformed_json_is_502_when_a_guardrail_reads_it(gateway, fake_upstream,
                                                                        chat):
    from doubles import PLUGINS, guardrail
    fake_upstream.fail(200, b"{not json")
    client = await gateway({"guardrails": [guardrail("post", mode="post_call",
                                                     default_on=True)]}, plugins=PLUGINS)
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 502
    assert (await resp.json())["error"]["message"] == "upstream answered with malformed JSON"


async def test_request_ids_are_the_gateways_own_and_unique(gateway, chat):
    client = await gateway()
    ids = set()
    for _ in range(3):
        resp = await client.post("/v1/chat/completions", json=chat(),
                                 headers={"x-request-id": "client-chosen"})
        ids.add(resp.headers["x-request-id"])
    assert len(ids) == 3 and "client-chosen" not in ids


@pytest.mark.parametrize("stream", [False, True])
async def test_response_over_max_response_size_is_refused(gateway, fake_upstream, chat, stream):
    fake_upstream.reply = "word " * 3000  # ~15 kB
    client = await gateway({"general_settings": {"max_response_size_mb": 0.005}})
    resp = await client.post("/v1/chat/completions", json=chat(stream=stream))
    text = await resp.text()
    assert "max_response_size_mb: 0.005" in text
    if stream:
        events = sse_payloads(text)
        assert orjson.loads(events[-1])["error"]["type"] == "response_too_large"
        assert "[DONE]" not in events
    else:
        assert resp.status == 502
        assert "word word" not in text
    fake_upstream.reply = "short"
    assert (await client.post("/v1/chat/completions", json=chat())).status == 200


@pytest.mark.parametrize("model", ["mock", "upstream"])
async def test_include_usage_ends_a_stream_with_a_usage_chunk(gateway, fake_upstream, chat,
                                                              model):
    client = await gateway({"model_list": [
        {"model_name": "mock", "params": {"model": "mock/echo"}},
        fake_upstream.model_entry("upstream")]})
    resp = await client.post("/v1/chat/completions", json=chat(
        "count these words", model=model, stream=True,
        stream_options={"include_usage": True}))
    events = [orjson.loads(line[6:]) for line in (await resp.text()).splitlines()
              if line.startswith("data: {")]
    assert events[-1]["choices"] == []
    assert events[-1]["usage"]["completion_tokens"] > 0
    assert all("usage" not in event for event in events[:-1])


async def test_the_server_header_does_not_name_the_http_library(gateway, chat):
    client = await gateway()
    for resp in (await client.get("/health/liveliness"),
                 await client.post("/v1/chat/completions", json=chat()),
                 await client.get("/no/such/route")):
        assert resp.headers["Server"] == "gatehouse"
        assert "aiohttp" not in str(resp.headers).lower()


@pytest.mark.parametrize("body,content_type,needle", [
    (b"<html><body>Welcome to nginx</body></html>", "text/html", "text/html, not an event"),
    (b"\x00\x01garbage", "application/octet-stream", "application/octet-stream, not an event"),
    (b"[1, 2, 3]", "application/json", "application/json, not an event"),
    (b'{"error": {"message": "nope"}}', "application/json", "application/json, not an event"),
])
async def test_a_stream_request_answered_without_an_event_stream_is_a_502(
        gateway, fake_upstream, chat, body, content_type, needle):
    fake_upstream.fail(200, body, content_type=content_type)
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["type"] == "upstream_error" and needle in error["message"]


@pytest.mark.parametrize("events,needle", [
    (b'data: [1, 2]\n\n', "not a completion chunk"),
    (b'data: "text"\n\n', "not a completion chunk"),
    (b'data: {not json\n\n', "not a completion chunk"),
    (b'data: {"choices": ["x"]}\n\n', "not a completion chunk"),
    (b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\ndata: 7\n\n',
     "not a completion chunk"),
    (b"<html>oops</html>\n", "without a chunk"),
    (b"data: [DONE]\n\n", "without a chunk"),
])
@pytest.mark.parametrize("keys", [False, True])
async def test_a_broken_event_stream_ends_with_an_error_event(
        start, fake_upstream, chat, events, needle, keys, caplog):
    # With keys, spend is tracked and every chunk passes the stream guard; without, chunks
    # pass straight through.
    fake_upstream.fail(200, events, content_type="text/event-stream")
    client = await (start() if keys else start({"general_settings": {"master_key": None}}))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True), headers=ADMIN)
    assert resp.status == 200
    payloads = sse_payloads(await resp.text())
    error = orjson.loads(payloads[-1])["error"]
    assert error["code"] == "502" and needle in error["message"]
    assert "[DONE]" not in payloads
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("kind", ["chat", "text"])
async def test_a_whole_completion_sent_to_a_stream_request_is_delivered_as_chunks(
        gateway, fake_upstream, chat, kind):
    path = "/v1/chat/completions" if kind == "chat" else "/v1/completions"
    body = chat(stream=True) if kind == "chat" else {"model": "gpt-4o", "prompt": "hi",
                                                     "stream": True}
    client = await gateway()
    whole = await (await client.post(path, json={**body, "stream": False})).json()
    fake_upstream.fail(200, whole)
    resp = await client.post(path, json={**body, "stream_options": {"include_usage": True}})
    assert resp.status == 200
    payloads = sse_payloads(await resp.text())
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    if kind == "chat":
        assert chunks[0]["object"] == "chat.completion.chunk"
        assert chunks[0]["choices"][0]["delta"]["content"] == fake_upstream.reply
    else:
        assert chunks[0]["choices"][0]["text"] == fake_upstream.reply
    assert chunks[0]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
