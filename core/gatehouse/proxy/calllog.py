"""Log records and callbacks, off the request path.

The request path only enqueues ``(call, selection, outcome)``; a background task builds the
record, lets ``logging_only`` guardrails mask it, adds a ``not_run`` entry for each selected
guardrail the call never reached, bills the call (the spend row's metadata carries the
``guardrail_information``), then hands the record to ``on_success`` / ``on_failure``. Nothing
is enqueued for a call with no such hooks selected; a call that only the observers (metrics,
traces) want is not enqueued either: they are shown it from a callback the event loop runs
once the request's task yields, which costs a fraction of the queue's round trip through the
worker.

A record is never dropped: each is what bills a call and gives back the budget it held. The
queue is bounded (``QUEUE_LIMIT``), and when it is full the call that ends waits for room
before its reply is sent -- back-pressure rather than a spill file: the backlog is in memory
either way, but this way it cannot grow past the bound, a client cannot outrun the worker by
more than the calls it has in flight, and nothing needs replaying after a crash. A backlog past
``WARN_BACKLOG`` is logged, at most once a minute, with its size.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from ..guardrails.dispatch import run_callbacks
from ..guardrails.engine import pending
from ..guardrails.monitoring import WOULD_HAVE, information, settle
from .providers import Reply, UpstreamError

if TYPE_CHECKING:
    from ..access.accounting import Accounting
    from ..guardrails.call import Call
    from ..guardrails.selection import Selection

log = logging.getLogger("gatehouse.calllog")

QUEUE_LIMIT = 10_000  # records waiting for the worker; beyond it, calls wait to end
WARN_BACKLOG = 5_000  # a backlog this long is worth a warning
WARN_EVERY = 60.0  # seconds between two warnings while it lasts


@dataclass(slots=True)
class Outcome:
    started: float
    status: int
    # The reply, parsed here (off the request path) when it is still raw.
    response: dict[str, Any] | Reply | None = None
    error: dict[str, Any] | None = None
    # A stream that ended in an error: what the upstream had produced by then, to bill.
    billed: dict[str, Any] | None = None
    # When the upstream call began and ended, and a stream's first chunk came (time.time()).
    upstream_began: float | None = None
    upstream_ended: float | None = None
    first_chunk: float | None = None
    # The error is the upstream's (or its being unreachable), not the gateway's refusal.
    upstream_failed: bool = False
    # What the observers' ``capture`` took from the request's context when it was submitted.
    context: Any = None
    # When the spend was priced and its row queued.
    billed_between: tuple[float, float] | None = None


class Observer(Protocol):
    """Metrics and traces: shown every call's outcome off the request path, after billing."""

    def observe(self, call: Call, selection: Selection, outcome: Outcome,
                ended: float) -> None: ...


class CallLog:
    def __init__(self, accounting: Accounting | None, observers: Sequence[Observer] = (),
                 capture: Callable[[], Any] | None = None, *, store_prompts: bool = False):
        # None: the gateway keeps no spend (no master key), so only hooks want records.
        self.accounting = accounting
        # general_settings.store_prompts_in_spend_logs: the spend row keeps the record's
        # request and reply, as the logging_only guardrails left them.
        self.store_prompts = store_prompts and accounting is not None
        self.observers = tuple(observers)
        # Called on the request path as a record is submitted: what an observer needs from
        # the request's context (the trace a call belongs to).
        self.capture = capture
        self._queue: asyncio.Queue[tuple[Call, Selection, Outcome, float]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._warned = -WARN_EVERY
        # Records waiting for their call's background guardrail runs.
        self._waiting: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._queue = asyncio.Queue(QUEUE_LIMIT)
        self._worker = asyncio.create_task(self._run(), name="gatehouse-call-log")

    async def stop(self) -> None:
        await self.drain()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, call: Call, selection: Selection, outcome: Outcome) -> None:
        """Queue the call's record; while the queue is full, wait for room."""
        queue = self._queue
        if queue is None or not (self.accounting is not None or selection.wants_record
                                 or self.observers):
            return
        if self.capture is not None:
            outcome.context = self.capture()
        item = (call, selection, outcome, time.time())
        running = pending(call)
        if running:
            # Shadow and demoted guardrail runs finish off the request path; the record waits
            # for their verdicts (each is bounded by its guardrail's timeout).
            task = asyncio.create_task(self._after(running, item))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)
            return
        await self._put(item)

    async def _after(self, running: list[asyncio.Task[None]],
                     item: tuple[Call, Selection, Outcome, float]) -> None:
        await asyncio.wait(running)
        await self._put(item)

    async def _put(self, item: tuple[Call, Selection, Outcome, float]) -> None:
        if self.accounting is None and not item[1].wants_record:
            # Nothing to bill or log: only the observers want the call.
            asyncio.get_running_loop().call_soon(self._observed, *item)
            return
        await self._queued(item)

    async def _queued(self, item: tuple[Call, Selection, Outcome, float]) -> None:
        queue = self._queue
        assert queue is not None
        backlog = queue.qsize()
        if backlog >= WARN_BACKLOG:
            self._warn(backlog)
        if not queue.full():
            queue.put_nowait(item)
            return
        # Shielded: a call cancelled while it waits (its client gone, the gateway stopping)
        # still leaves its record queued.
        await asyncio.shield(queue.put(item))

    def _warn(self, backlog: int) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning("%d call records wait to be billed and logged; at %d, calls wait for "
                        "room before their reply is sent", backlog, QUEUE_LIMIT)

    async def drain(self) -> None:
        """Wait until every record submitted so far has been handled (tests, shutdown)."""
        while self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)
        if self._queue is not None:
            await self._queue.join()
        # The observers' callbacks scheduled so far run before this task resumes: the event
        # loop runs what is ready in the order it was scheduled.
        await asyncio.sleep(0)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self._handle(*item)
            except Exception:  # noqa: BLE001 - the worker must outlive any one record
                log.exception("call log record failed")
            finally:
                self._queue.task_done()

    async def _handle(self, call: Call, selection: Selection, outcome: Outcome,
                      ended: float) -> None:
        _parse_reply(outcome)
        wanted = selection.wants_record or self.store_prompts
        record = _record(call, outcome, ended) if wanted else None
        masked = True
        if record is not None and selection.logging_only:
            masked = await run_callbacks(selection.logging_only, {"call": call, "record": record})
            record["guardrails"] += [i.name for i in selection.logging_only]
        if selection.names:
            settle(call, selection, outcome.status)
        if self.accounting is not None:
            billed = outcome.response if outcome.billed is None else outcome.billed
            began = time.time()
            texts = None
            if self.store_prompts and record is not None and masked and not _unmasked(call):
                texts = (record["request"], record["response"])
            await self.accounting.account(
                call, started=outcome.started, status=outcome.status, response=billed,
                failed=outcome.error is not None and outcome.billed is None, texts=texts,
                first_chunk=outcome.first_chunk, error=outcome.error)
            outcome.billed_between = (began, time.time())
        self._observe(call, selection, outcome, ended)
        if record is None or not selection.wants_record:
            return
        if not masked:
            log.error("record of request %s dropped: a logging_only guardrail failed",
                      call.request_id)
            return
        record["guardrail_information"] = information(call)
        if outcome.error is None:
            await run_callbacks(selection.on_success, {"call": call, "record": record})
        else:
            error = {"status": outcome.status, "body": outcome.error}
            await run_callbacks(selection.on_failure,
                                {"call": call, "record": record, "error": error})

    def _observed(self, call: Call, selection: Selection, outcome: Outcome,
                  ended: float) -> None:
        """What ``_handle`` does for a call that only the observers want."""
        try:
            _parse_reply(outcome)
            if selection.names:
                settle(call, selection, outcome.status)
        except Exception:  # noqa: BLE001 - as in the worker: one call must not stop the rest
            log.exception("call log record failed")
            return
        self._observe(call, selection, outcome, ended)

    def _observe(self, call: Call, selection: Selection, outcome: Outcome,
                 ended: float) -> None:
        for observer in self.observers:
            try:
                observer.observe(call, selection, outcome, ended)
            except Exception:  # noqa: BLE001 - a view of the call must not stop its record
                log.exception("%s failed on request %s", type(observer).__name__,
                              call.request_id)


def _parse_reply(outcome: Outcome) -> None:
    """The reply as an object (None when the upstream's bytes were not one): the bytes the
    client gets were taken before the call was submitted, so nothing needs them any more."""
    if isinstance(outcome.response, Reply):
        try:
            outcome.response = outcome.response.data
        except UpstreamError:
            outcome.response = None


def _unmasked(call: Call) -> bool:
    """Whether a logging_only guardrail that does not enforce left text in the record that it
    would have masked: text never kept in a spend row."""
    return any(run.mode == "logging_only" and run.status == WOULD_HAVE
               for run in call.guardrail_runs or ())


def _record(call: Call, outcome: Outcome, ended: float) -> dict[str, Any]:
    # No copy of request and response: the reply has been sent, so masking them in place for
    # the log cannot reach the client or the upstream.
    return {
        "request_id": call.request_id,
        "call_type": call.call_type,
        "model": call.model,
        "stream": call.stream,
        "user": call.user,
        "metadata": call.metadata,
        "key_hash": call.principal.key_hash,
        "team_id": call.principal.team_id,
        "client_ip": call.client_ip,
        "guardrails": list(call.applied_guardrails),
        "status": outcome.status,
        "start_time": outcome.started,
        "end_time": ended,
        "verdicts": dict(call.verdicts),
        "request": call.body,
        "response": outcome.response,
    }
