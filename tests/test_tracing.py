"""OpenTelemetry traces: a span per call with its guardrail runs, upstream call and spend write
as children; an incoming traceparent continued and passed upstream. Checked with the SDK's
in-memory exporter, and with a real OTLP/HTTP receiver decoding what the gateway exports."""

import asyncio

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind, StatusCode

from gatehouse.app import GATEWAY
from admin_kit import ADMIN
from doubles import ProbePlugin, guardrail

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
GUARDRAILS = [guardrail("checker", block_word="forbidden", default_on=True)]
PLUGINS = [("probe-plugin", ProbePlugin())]


async def traced(start, monkeypatch, **settings):
    monkeypatch.setenv("OTEL_EXPORTER", "in_memory")
    client = await start({"guardrails": GUARDRAILS,
                          "litellm_settings": {"callbacks": ["otel"], **settings}},
                         plugins=PLUGINS)
    return client, client.app[GATEWAY]


async def finished_spans(gateway):
    await gateway.call_log.drain()
    await gateway.tracing.flush()
    spans = gateway.tracing.exporter.get_finished_spans()
    gateway.tracing.exporter.clear()
    return {span.name: span for span in spans}


async def test_a_call_is_a_span_with_its_guardrail_upstream_and_spend_write(
        start, monkeypatch, send_chat, fake_upstream):
    client, gateway = await traced(start, monkeypatch)
    resp = await send_chat(client, "hello", headers={**ADMIN, "traceparent": TRACEPARENT})
    assert resp.status == 200
    spans = await finished_spans(gateway)
    assert set(spans) == {"chat_completion gpt-4o", "guardrail checker", "upstream gpt-4o",
                          "spend write"}
    root = spans["chat_completion gpt-4o"]
    # The caller's trace, continued.
    assert f"{root.context.trace_id:032x}" == PARENT_TRACE
    assert f"{root.parent.span_id:016x}" == PARENT_SPAN
    assert root.kind is SpanKind.SERVER
    assert root.attributes["gatehouse.request_id"] == resp.headers["x-request-id"]
    assert root.attributes["http.response.status_code"] == 200
    for child in ("guardrail checker", "upstream gpt-4o", "spend write"):
        assert spans[child].parent.span_id == root.context.span_id
        assert spans[child].context.trace_id == root.context.trace_id
    guard = spans["guardrail checker"].attributes
    assert (guard["gatehouse.guardrail.mode"], guard["gatehouse.guardrail.verdict"]) == \
        ("pre_call", "passed")
    # The upstream was told to continue the trace under the gateway's upstream span.
    upstream = spans["upstream gpt-4o"]
    assert upstream.kind is SpanKind.CLIENT
    assert fake_upstream.headers[-1]["traceparent"] == \
        f"00-{PARENT_TRACE}-{upstream.context.span_id:016x}-01"
    assert upstream.start_time <= upstream.end_time
    assert root.start_time <= upstream.start_time and upstream.end_time <= root.end_time


async def test_a_blocked_call_has_an_error_span_and_no_upstream_span(start, monkeypatch,
                                                                      send_chat):
    client, gateway = await traced(start, monkeypatch)
    resp = await send_chat(client, "something forbidden", headers=ADMIN)
    assert resp.status == 400
    spans = await finished_spans(gateway)
    assert "upstream gpt-4o" not in spans
    root = spans["chat_completion gpt-4o"]
    assert root.status.status_code is StatusCode.ERROR
    # No traceparent came in: a trace of the gateway's own.
    assert root.parent is None
    guard = spans["guardrail checker"]
    assert guard.attributes["gatehouse.guardrail.verdict"] == "blocked"
    assert guard.attributes["gatehouse.guardrail.status"] == "guardrail_intervened"


async def test_a_monitored_guardrail_span_says_what_it_would_have_done(start, monkeypatch,
                                                                        send_chat):
    monkeypatch.setenv("OTEL_EXPORTER", "in_memory")
    client = await start({"guardrails": [guardrail("watcher", block_word="plan",
                                                   default_on=True, enforce=False)],
                          "litellm_settings": {"callbacks": ["otel"]}}, plugins=PLUGINS)
    resp = await send_chat(client, "my plan", headers=ADMIN)
    assert resp.status == 200
    spans = await finished_spans(client.app[GATEWAY])
    guard = spans["guardrail watcher"]
    assert guard.attributes["gatehouse.guardrail.status"] == "would_have_intervened"
    # It blocked nothing: neither it nor the call is an error.
    assert guard.status.status_code is not StatusCode.ERROR
    assert spans["chat_completion gpt-4o"].status.status_code is not StatusCode.ERROR


async def test_streams_are_traced_with_their_first_chunk(start, monkeypatch, send_chat):
    client, gateway = await traced(start, monkeypatch)
    resp = await send_chat(client, "hello", headers=ADMIN, stream=True)
    assert resp.status == 200
    await resp.read()
    spans = await finished_spans(gateway)
    assert [event.name for event in spans["upstream gpt-4o"].events] == ["first chunk"]


async def test_a_malformed_traceparent_starts_a_new_trace(start, monkeypatch, send_chat,
                                                          fake_upstream):
    client, gateway = await traced(start, monkeypatch)
    resp = await send_chat(client, "hello", headers={**ADMIN, "traceparent": "00-zz-yy-01"})
    assert resp.status == 200
    root = (await finished_spans(gateway))["chat_completion gpt-4o"]
    assert root.parent is None
    sent = fake_upstream.headers[-1]["traceparent"]
    assert sent.split("-")[1] == f"{root.context.trace_id:032x}"


async def test_prometheus_and_otel_together(start, monkeypatch, send_chat, caplog):
    """A LiteLLM config naming both loads without a warning, and both work."""
    monkeypatch.setenv("OTEL_EXPORTER", "in_memory")
    client = await start({"callbacks": ["prometheus"],
                          "litellm_settings": {"callbacks": ["otel"]}})
    assert "does not implement" not in caplog.text
    gateway = client.app[GATEWAY]
    assert (await send_chat(client, "hello", headers=ADMIN)).status == 200
    spans = await finished_spans(gateway)
    assert "chat_completion gpt-4o" in spans
    text = await (await client.get("/metrics")).text()
    assert 'litellm_proxy_total_requests_metric_total{' in text
    assert 'status_code="200"' in text


async def test_spans_reach_a_real_otlp_http_receiver(start, monkeypatch, send_chat,
                                                     aiohttp_server):
    received = []

    async def traces(request):
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        received.append((dict(request.headers), export))
        return web.Response(status=200, content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(receiver)
    monkeypatch.setenv("OTEL_ENDPOINT", str(server.make_url("/")))
    monkeypatch.setenv("OTEL_HEADERS", "x-collector-token=abc")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gatehouse-test")
    client = await start({"guardrails": GUARDRAILS,
                          "litellm_settings": {"callbacks": ["otel"]}}, plugins=PLUGINS)
    gateway = client.app[GATEWAY]
    assert (await send_chat(client, "hello", headers={
        **ADMIN, "traceparent": TRACEPARENT})).status == 200
    await gateway.call_log.drain()
    # The SDK exports from its own thread, to the receiver on this loop.
    await gateway.tracing.flush()
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.05)
    [(headers, export)] = received
    assert headers["x-collector-token"] == "abc"
    [resource_spans] = export.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "gatehouse-test"
    spans = [span for scope in resource_spans.scope_spans for span in scope.spans]
    assert sorted(span.name for span in spans) == [
        "chat_completion gpt-4o", "guardrail checker", "spend write", "upstream gpt-4o"]
    assert {span.trace_id.hex() for span in spans} == {PARENT_TRACE}


async def test_an_unknown_exporter_is_refused_at_start(gateway, monkeypatch):
    from gatehouse.config import ConfigError

    monkeypatch.setenv("OTEL_EXPORTER", "zipkin")
    with pytest.raises(ConfigError, match="OTEL_EXPORTER='zipkin'"):
        await gateway({"litellm_settings": {"callbacks": ["otel"]}})
