"""OpenTelemetry traces (``callbacks: ["otel"]``): a span per call, with a child per guardrail
run, the upstream call and the spend write; an incoming ``traceparent`` is continued, and the
upstream is sent one naming the upstream span.

On the request path only ids are drawn (a few microseconds): the trace the request continues or
starts, the call span's id and the upstream span's, which the upstream must be told before it is
called. The spans themselves are made from the call's record, off the request path, with the
times it holds and the ids drawn earlier (``_PresetIds``), and exported in batches from the
SDK's own thread.

Configured as LiteLLM is, by the environment: ``OTEL_EXPORTER`` (``otlp_http``, the default,
``console`` or ``in_memory``), ``OTEL_ENDPOINT`` (the collector's base URL or its ``/v1/traces`` URL),
``OTEL_HEADERS`` (``name=value,name=value``) and ``OTEL_SERVICE_NAME``; without
``OTEL_ENDPOINT`` the SDK's own ``OTEL_EXPORTER_OTLP_*`` variables apply.
"""

from __future__ import annotations

import asyncio
import os
import random
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from aiohttp import web

from ..config import ConfigError
from ..errors import error_type
from ..guardrails.monitoring import FAILED
from ..proxy.providers import UPSTREAM_HEADERS

if TYPE_CHECKING:
    from ..guardrails.call import Call
    from ..guardrails.selection import Selection
    from ..proxy.calllog import Outcome

EXPORTERS = ("otlp_http", "console", "in_memory")
TRACES_PATH = "/v1/traces"


@dataclass(frozen=True, slots=True)
class TraceIds:
    """What the request path drew for a call's trace."""

    trace_id: int
    call_span: int
    upstream_span: int
    flags: int
    # The caller's span, when its traceparent was valid.
    parent_span: int | None


_IDS: ContextVar[TraceIds | None] = ContextVar("gatehouse_trace_ids", default=None)


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a W3C ``traceparent``; None when it is not one."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or len(parts[1]) != 32 \
            or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, flags


def exporter_from_env(env: Mapping[str, str]) -> Any:
    kind = env.get("OTEL_EXPORTER", "otlp_http").lower()
    if kind == "in_memory":  # LiteLLM's too: spans kept in the process, for tests
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter)

        return InMemorySpanExporter()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind not in ("otlp_http", "otlp", "http/protobuf"):
        raise ConfigError(f"OTEL_EXPORTER={kind!r}: gatehouse exports traces with "
                          f"{' or '.join(EXPORTERS)}")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    options: dict[str, Any] = {}
    if endpoint := env.get("OTEL_ENDPOINT"):
        endpoint = endpoint.rstrip("/")
        options["endpoint"] = endpoint if endpoint.endswith(TRACES_PATH) \
            else endpoint + TRACES_PATH
    if headers := env.get("OTEL_HEADERS"):
        options["headers"] = dict(pair.split("=", 1) for pair in headers.split(",")
                                  if "=" in pair)
    return OTLPSpanExporter(**options)


class Tracing:
    def __init__(self, env: Mapping[str, str] | None = None):
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise ConfigError("callbacks: otel needs OpenTelemetry: pip install "
                              "'gatehouse-proxy[otel]'") from None
        env = os.environ if env is None else env
        self._ids = _preset_ids()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME",
                                                              "gatehouse")}),
            id_generator=self._ids)
        self.exporter = exporter_from_env(env)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("gatehouse")

    # --- on the request path ---------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        incoming = parse_traceparent(request.headers.get("traceparent"))
        draw = random.getrandbits
        if incoming is None:
            ids = TraceIds(draw(128) or 1, draw(64) or 1, draw(64) or 1, 1, None)
        else:
            ids = TraceIds(incoming[0], draw(64) or 1, draw(64) or 1, incoming[2], incoming[1])
        _IDS.set(ids)
        UPSTREAM_HEADERS.set({"traceparent":
                              f"00-{ids.trace_id:032x}-{ids.upstream_span:016x}-"
                              f"{ids.flags:02x}"})
        return await handler(request)

    @staticmethod
    def capture() -> TraceIds | None:
        return _IDS.get()

    # --- off the request path --------------------------------------------------------------

    def observe(self, call: Call, selection: Selection, outcome: Outcome, ended: float) -> None:
        ids = outcome.context
        if not isinstance(ids, TraceIds):
            return
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        parent = None
        if ids.parent_span is not None:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(trace.SpanContext(
                ids.trace_id, ids.parent_span, is_remote=True,
                trace_flags=trace.TraceFlags(ids.flags))))
        # A continued trace takes its id from the parent; only a new one takes the drawn id.
        self._ids.preset(ids.trace_id if parent is None else None, ids.call_span)
        root = self.tracer.start_span(
            f"{call.call_type} {call.model}", context=parent, kind=SpanKind.SERVER,
            start_time=_ns(outcome.started), attributes={
                "gatehouse.request_id": call.request_id, "gen_ai.request.model": call.model,
                "http.response.status_code": outcome.status,
                "gatehouse.key_alias": call.principal.key_alias or "",
                "gatehouse.team_id": call.principal.team_id or "",
                "gatehouse.guardrails": ",".join(call.applied_guardrails)})
        if outcome.error is not None:
            root.set_status(Status(StatusCode.ERROR, error_type(outcome.error)))
        inside = trace.set_span_in_context(root)
        for run in call.guardrail_runs or ():
            if run.start_time is None:
                continue  # not_run: nothing to time; the record and metrics say why
            verdict = call.verdicts.get(run.name, "")
            span = self.tracer.start_span(
                f"guardrail {run.name}", context=inside, start_time=_ns(run.start_time),
                attributes={
                    "gatehouse.guardrail.name": run.name, "gatehouse.guardrail.mode": run.mode,
                    "gatehouse.guardrail.provider": run.provider,
                    "gatehouse.guardrail.verdict": verdict,
                    "gatehouse.guardrail.status": run.status,
                    "gatehouse.guardrail.masked_entity_count":
                        sum((run.masked_entity_count or {}).values())})
            if run.status == FAILED or verdict == "blocked":
                span.set_status(Status(StatusCode.ERROR, verdict or run.status))
            span.end(_ns(run.start_time + run.duration))
        if outcome.upstream_began is not None:
            self._ids.preset(None, ids.upstream_span)
            upstream = self.tracer.start_span(
                f"upstream {call.model}", context=inside, kind=SpanKind.CLIENT,
                start_time=_ns(outcome.upstream_began), attributes={
                    "gen_ai.request.model": call.model,
                    "gatehouse.model_id": call.response_headers.get("x-litellm-model-id", ""),
                    "server.address": call.response_headers.get("x-litellm-model-api-base",
                                                                "")})
            if outcome.first_chunk is not None:
                upstream.add_event("first chunk", timestamp=_ns(outcome.first_chunk))
            upstream.end(_ns(outcome.upstream_ended or ended))
        if outcome.billed_between is not None:
            began, done = outcome.billed_between
            spend = self.tracer.start_span(
                "spend write", context=inside, kind=SpanKind.CLIENT, start_time=_ns(began),
                attributes={"db.operation.name": "INSERT", "db.collection.name": "spend_logs"})
            spend.end(_ns(done))
        root.end(_ns(ended))

    async def flush(self) -> None:
        await asyncio.to_thread(self.provider.force_flush)

    async def close(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)


def _preset_ids() -> Any:
    """The SDK's id generator, except that the next span (and, for a new trace, the next
    trace) takes the id the request path drew and sent upstream. Spans are made one at a time
    on the event loop, so a preset is always taken by the span it was set for."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class PresetIds(RandomIdGenerator):
        def __init__(self) -> None:
            self._trace: int | None = None
            self._span: int | None = None

        def preset(self, trace_id: int | None, span_id: int) -> None:
            self._trace, self._span = trace_id, span_id

        def generate_span_id(self) -> int:
            span, self._span = self._span, None
            return span if span is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            trace_id, self._trace = self._trace, None
            return trace_id if trace_id is not None else super().generate_trace_id()

    return PresetIds()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)

