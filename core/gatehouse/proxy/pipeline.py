"""One call's path through the gateway, top to bottom:

parse -> check -> select guardrails -> pre_call -> upstream (with during_call alongside) ->
post_call (streams: per chunk) -> reply with the applied-guardrails headers -> log record and
callbacks off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, TypeVar

import orjson
from aiohttp import web

from ..access.gate import check_enforced_params
from ..errors import ClientError, error_body, error_message, json_response
from ..guardrails.base import GuardrailAnswered, GuardrailBlocked
from ..guardrails.call import CALL, CLIENT_IP, REQUEST_ID, Call
from ..guardrails.dispatch import run_in_order, run_together
from ..guardrails.streaming import StreamGuard
from .calllog import Outcome
from .fan_out import fan_out, fan_out_models
from .headers import FAILED, key_headers, succeeded
from .providers import UpstreamError, wants_usage
from .providers.mock import GuardrailAnswer
from .schemas import check_body, read_json

if TYPE_CHECKING:
    from ..access.gate import CallGate
    from ..config.general_settings import GeneralSettings
    from ..guardrails.call import CallType, Principal
    from ..guardrails.selection import Selection, Selector
    from .calllog import CallLog
    from .fallbacks import Fallbacks
    from .providers import Provider, Reply
    from .router import Router

T = TypeVar("T")

log = logging.getLogger("gatehouse.pipeline")

APPLIED_HEADERS = ("x-gatehouse-applied-guardrails", "x-litellm-applied-guardrails")
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache",
               "x-accel-buffering": "no"}
MB = 1024 * 1024
# Chunks relayed between two turns given to the rest of the event loop. Reading an upstream
# chunk that is already buffered never waits, so without these turns a fast upstream would keep
# every other call waiting for as long as its stream lasts. A chunk costs a few to a few dozen
# microseconds through the gateway, so 32 of them hold the loop for about a millisecond at
# most, while a turn costs a few microseconds: under 1% added to a stream's CPU.
YIELD_EVERY = 32
# nginx's status for a client that closed the connection before the reply was complete.
CLIENT_CLOSED = 499
CLIENT_CLOSED_BODY = error_body("The client closed the connection before the reply was complete",
                                kind="client_closed_request")


@dataclass(frozen=True, slots=True)
class Served:
    """A non-streamed reply, and how long the upstream took to give it."""

    reply: Reply
    seconds: float
    began: float


class Pipeline:
    def __init__(self, router: Router, selector: Selector, gate: CallGate, call_log: CallLog,
                 settings: GeneralSettings, fallbacks: Fallbacks):
        self.router = router
        self.fallbacks = fallbacks
        self.selector = selector
        self.gate = gate
        self.call_log = call_log
        self.enforced_params = settings.enforced_params
        self.user_header = settings.end_user_header
        self.max_response_mb = settings.max_response_size_mb
        self.max_response_bytes = (None if self.max_response_mb is None
                                   else int(self.max_response_mb * MB))
        # Without spend to record, an unchecked stream is passed through untouched.
        self.tracks_spend = call_log.accounting is not None
        self.prices = call_log.accounting.prices if call_log.accounting is not None else None

    async def handle(self, request: web.Request, call_type: CallType,
                     principal: Principal, model: str | None = None) -> web.StreamResponse:
        """``model``: named by the path (Azure-style routes), over the body's."""
        started = time.time()
        body = await read_json(request)
        if model is not None and isinstance(body, dict):
            body["model"] = model
        header_user = request.headers.get(self.user_header) if self.user_header else None
        if isinstance(body, dict) and body.get("model") is None:
            await self.gate.fill_default_model(body, header_user, principal)
        check_body(call_type, body)
        check_enforced_params(self.enforced_params, body)
        serves = self.router.serves
        if call_type == "chat_completion" and (models := fan_out_models(body)) is not None:
            callers = [await self.gate.team_for(principal, model, serves) for model in models]
            return await fan_out(self.gate.models, callers, body, models, lambda one, i: (
                self.serve_body(request, call_type, callers[i], one, started, header_user,
                                f"{request[REQUEST_ID]}-{i}")))
        return await self.serve_body(
            request, call_type, await self.gate.team_for(principal, body["model"], serves),
            body, started, header_user, request[REQUEST_ID])

    async def serve_body(self, request: web.Request, call_type: CallType,
                         principal: Principal, body: dict[str, Any], started: float,
                         header_user: str | None, request_id: str) -> web.StreamResponse:
        """One call of a checked ``body``."""
        requested = body.pop("guardrails", None)
        mock_response = body.pop("mock_response", None)
        call = Call(
            request_id=request_id, call_type=call_type, model=body["model"],
            body=body, stream=body.get("stream") is True,
            metadata=body.pop("metadata", None) or {}, principal=principal,
            client_ip=request[CLIENT_IP], response_headers=key_headers(principal),
            header_user=header_user,
            headers=request.headers,
        )
        # For the access log line, which names the model.
        request[CALL] = call
        if call.stream and self.tracks_spend and not wants_usage(body):
            # Priced from the upstream's own count: ask for the usage chunk, and keep it from a
            # client that did not ask for it.
            body["stream_options"] = {**(body.get("stream_options") or {}),
                                      "include_usage": True}
            call.hide_usage = True
        selection = self.selector.select(call, requested, principal)
        try:
            return await self._serve(request, call, selection, requested, mock_response,
                                     started)
        finally:
            # The key's parallel-call slot, however the call ended (a stream: once relayed).
            await self.gate.accounting.release(call)

    async def _serve(self, request: web.Request, call: Call, selection: Selection,
                     requested: Any, mock_response: str | None, started: float
                     ) -> web.StreamResponse:
        try:
            # A model the caller may not use is refused before any question of whether it
            # exists (LiteLLM's order).
            await self.gate.check(call, requested, request.path)
            fallbacks = self.fallbacks.requested(call, call.body.pop("fallbacks", None))
            provider = self.router.provider_for(call, mock_response)
            try:
                await run_in_order(selection.pre_call, call, {"call": call})
                served = await self.fallbacks.serve(
                    call, selection, provider, fallbacks,
                    lambda chosen, to: self._upstream(request, call, chosen, to))
            except GuardrailAnswered as answered:
                # The guardrail's answer takes the upstream's place; the guardrails that check
                # replies still see it.
                selection = replace(selection, during_call=())
                served = await self._upstream(request, call, selection,
                                              GuardrailAnswer(answered.text, answered.model))
        except GuardrailBlocked as blocked:
            return await self._refuse(call, selection, started, blocked.status, blocked.body())
        except ClientError as exc:
            return await self._refuse(call, selection, started, exc.status, exc.body,
                                      exc.headers)
        except UpstreamError as exc:
            log.warning("upstream error %d for model %r: %s", exc.status, call.model,
                        error_message(exc.body))
            return await self._refuse(call, selection, started, exc.status, exc.body,
                                      upstream_failed=True)
        except (ConnectionResetError, asyncio.CancelledError):
            # The client left (or the gateway is stopping) before a byte of the reply was
            # sent: still one record, so that the call is billed for what it cost and the
            # budget it held is given back.
            await self.call_log.submit(
                call, selection, Outcome(started, CLIENT_CLOSED, error=CLIENT_CLOSED_BODY))
            raise
        if isinstance(served, tuple):
            return await self._relay(call, selection, started, *served)
        reply, upstream_seconds = served.reply, served.seconds
        succeeded(call, reply, started, upstream_seconds, self.prices)
        body = reply.raw
        await self.call_log.submit(call, selection, Outcome(
            started, 200, response=reply, upstream_began=served.began,
            upstream_ended=served.began + upstream_seconds))
        return web.Response(body=body, content_type="application/json",
                            headers=reply_headers(call))

    async def _refuse(self, call: Call, selection: Selection, started: float, status: int,
                      body: dict[str, Any], headers: dict[str, str] | None = None, *,
                      upstream_failed: bool = False) -> web.Response:
        await self.call_log.submit(call, selection, Outcome(
            started, status, error=body, upstream_failed=upstream_failed))
        return json_response(body, status=status,
                             headers={**reply_headers(call), **FAILED, **(headers or {})})

    def _check_response_size(self, size: int) -> None:
        limit = self.max_response_bytes
        if limit is not None and size > limit:
            raise UpstreamError.make(
                502, f"The model's response is larger than the gateway allows "
                     f"(max_response_size_mb: {self.max_response_mb:g})",
                "response_too_large")

    async def _upstream(self, request: web.Request, call: Call, selection: Selection,
                        provider: Provider) -> Served | tuple[Any, ...]:
        """The reply, checked by the post_call guardrails; for a stream, what ``_relay``
        needs."""
        began = time.time()
        if call.stream:
            return (*await self._open_stream(request, call, selection, provider), began)
        reply = await _alongside_during(selection, call, provider.complete(call))
        seconds = time.time() - began
        self._check_response_size(len(reply.raw))
        if selection.post_call:
            await run_in_order(selection.post_call, call, {"call": call, "response": reply.data})
        return Served(reply, seconds, began)

    async def _open_stream(self, request: web.Request, call: Call, selection: Selection,
                           provider: Provider
                           ) -> tuple[AsyncIterator[Reply], web.StreamResponse,
                                      StreamGuard | None]:
        """The upstream's stream, and the client's begun. Errors up to here (upstream refused,
        during_call blocked) still get a plain JSON reply."""
        chunks = await _alongside_during(selection, call, provider.stream(call))
        # The guard also assembles the reply that spend and log records are made from.
        guard = StreamGuard(call, selection) if (
            selection.checks_stream or selection.wants_record or self.tracks_spend) else None
        names = [*call.applied_guardrails,
                 *(i.name for i in (*selection.post_call_stream, *selection.post_call_assembled)
                   if i.name not in call.applied_guardrails)]
        response = web.StreamResponse(headers={**SSE_HEADERS, **call.response_headers,
                                               **applied_headers(names)})
        try:
            await response.prepare(request)
        except BaseException:
            await chunks.aclose()
            raise
        return chunks, response, guard

    async def _relay(self, call: Call, selection: Selection, started: float,
                     chunks: AsyncIterator[Reply], response: web.StreamResponse,
                     guard: StreamGuard | None, began: float) -> web.StreamResponse:
        outcome = Outcome(started, 200)
        received = relayed = 0
        first_chunk = None
        try:
            async for chunk in chunks:
                relayed += 1
                if relayed == 1:
                    first_chunk = time.time()
                if relayed % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                if self.max_response_bytes is not None:
                    received += len(chunk.raw)
                    self._check_response_size(received)
                if guard is None:
                    # The upstream's own bytes, unparsed when the provider did not parse them.
                    await response.write(b"data: " + chunk.raw + b"\n\n")
                    continue
                for out in await guard.feed(chunk.data):
                    await response.write(b"data: " + out + b"\n\n")
            if guard is not None:
                for out in await guard.finish():
                    await response.write(b"data: " + out + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
        except GuardrailBlocked as blocked:
            outcome = Outcome(started, blocked.status, error=blocked.body())
        except (ClientError, UpstreamError) as exc:
            if isinstance(exc, UpstreamError):
                log.warning("upstream error %d mid-stream for model %r: %s", exc.status,
                            call.model, error_message(exc.body))
            outcome = Outcome(started, exc.status, error=exc.body)
        except (ConnectionResetError, asyncio.CancelledError):
            outcome = Outcome(started, CLIENT_CLOSED, error=CLIENT_CLOSED_BODY)
            # The client went away; stop reading from the upstream.
            await chunks.aclose()
            raise
        finally:
            # Submitted here, so a call is logged and billed however it ended -- a client
            # hanging up (or the task cancelled) included.
            outcome.upstream_began, outcome.first_chunk = began, first_chunk
            outcome.upstream_ended = time.time()
            if guard is not None and outcome.error is None:
                outcome.response = guard.response_for_log()
            elif guard is not None:
                # Cut short, the call still costs what the upstream produced for it.
                outcome.billed = guard.response_received()
            await self.call_log.submit(call, selection, outcome)
        if outcome.error is not None:
            await chunks.aclose()
            await response.write(b"data: " + orjson.dumps(outcome.error) + b"\n\n")
        await response.write_eof()
        return response


def reply_headers(call: Call) -> dict[str, str]:
    if not (call.response_headers or call.applied_guardrails):
        return {}
    return {**call.response_headers, **applied_headers(call.applied_guardrails)}


def applied_headers(names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    value = ",".join(names)
    return {header: value for header in APPLIED_HEADERS}


async def _alongside_during(selection: Selection, call: Call, upstream: Awaitable[T]) -> T:
    """Await the upstream call while the ``during_call`` guardrails run; a block discards it."""
    if not selection.during_call:
        return await upstream
    task = asyncio.ensure_future(upstream)
    answered: list[float] = []
    task.add_done_callback(lambda _: answered.append(time.time()))
    try:
        await run_together(selection.during_call, call)
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    _held_up_past(selection, call, answered[0] if answered else None)
    return await task


def _held_up_past(selection: Selection, call: Call, answered: float | None) -> None:
    """A ``during_call`` run held the call up only for what it took past the upstream's answer
    (``answered``; None: still coming, so none of it)."""
    names = {impl.name for impl in selection.during_call}
    for run in call.guardrail_runs or ():
        if run.mode != "during_call" or run.name not in names or run.start_time is None:
            continue
        ended = run.start_time + run.added_latency
        run.added = 0.0 if answered is None else max(0.0, ended - answered)
