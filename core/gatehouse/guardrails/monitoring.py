"""What each guardrail leaves on a call: one :class:`GuardrailRun` per guardrail and mode it ran
in (a stream's per-chunk runs share one), kept in ``Call.guardrail_runs``, and a ``not_run``
one for each guardrail and mode the call was selected for but never reached.

The call log puts them in the log record and the spend row as LiteLLM's
``guardrail_information`` entries (:meth:`GuardrailRun.logged`); metrics and traces read the
typed records from ``call.guardrail_runs``. A call that runs no guardrail allocates nothing.

While a hook runs, its record is the current one (a context variable, so hooks running
concurrently each see their own), which lets :meth:`Guardrail.report` and the vendor helpers
note the vendor's answer and what was masked without being handed the call.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Mapping

from .masking import looks_secret

if TYPE_CHECKING:
    from .call import Call
    from .dispatch import HookImpl
    from .selection import Selection

RunStatus = Literal["success", "guardrail_intervened", "would_have_intervened",
                    "guardrail_failed_to_respond", "not_run"]
SUCCESS: RunStatus = "success"
INTERVENED: RunStatus = "guardrail_intervened"
# A guardrail that does not enforce (enforce: false, a shadow, a demoted run) would have
# blocked or rewritten the call.
WOULD_HAVE: RunStatus = "would_have_intervened"
FAILED: RunStatus = "guardrail_failed_to_respond"
NOT_RUN: RunStatus = "not_run"
# When a stream's chunks end differently, the record keeps the most telling outcome.
_RANK = {NOT_RUN: 0, SUCCESS: 1, WOULD_HAVE: 2, INTERVENED: 2, FAILED: 3}

STOPPED = ("blocked", "failed_closed")

REDACTED = "[REDACTED]"


@dataclass(slots=True)
class GuardrailRun:
    """One guardrail in one mode on one call.

    ``status``: ``success`` (it passed the call), ``guardrail_intervened`` (it blocked,
    answered, or masked something), ``guardrail_failed_to_respond`` (its vendor failed or timed
    out, or it crashed -- whatever its ``on_error`` then did), ``not_run`` (selected for the
    call, but the call never reached it: ``reason`` says why). Times are epoch seconds;
    ``duration`` is the seconds spent inside the guardrail (over all of a stream's chunks).
    ``masked_entity_count`` is entity type -> how many were masked; ``response`` the vendor's
    last answer with credentials removed (or what the guardrail reported instead).

    ``added`` is the seconds the run held the call up (None: as long as ``duration``): less
    for a run demoted past its latency budget, nothing for a shadow. ``cache_hits`` /
    ``cache_misses`` count texts whose verdict came from the verdict cache / from the vendor.
    ``notes`` holds what the entry shows besides LiteLLM's fields (``enforced``,
    ``shadow_of`` and whether the verdicts differ, ``latency_budget``).
    """

    name: str
    provider: str
    mode: str
    status: RunStatus = SUCCESS
    start_time: float | None = None
    end_time: float | None = None
    duration: float = 0.0
    masked_entity_count: dict[str, int] | None = None
    response: Any = None
    reason: str | None = None
    added: float | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    notes: dict[str, Any] | None = None

    def logged(self) -> dict[str, Any]:
        """LiteLLM's ``guardrail_information`` entry, plus ``status_reason`` and the notes."""
        entry = {"guardrail_name": self.name, "guardrail_provider": self.provider,
                 "guardrail_mode": self.mode, "guardrail_status": self.status,
                 "guardrail_response": self.response, "start_time": self.start_time,
                 "end_time": self.end_time, "duration": self.duration,
                 "masked_entity_count": dict(self.masked_entity_count or {}),
                 "status_reason": self.reason}
        if self.cache_hits or self.cache_misses:
            entry["cache"] = {"hits": self.cache_hits, "misses": self.cache_misses}
        if self.notes:
            entry.update(self.notes)
        return entry

    def count_cache(self, hits: int, misses: int) -> None:
        self.cache_hits += hits
        self.cache_misses += misses

    @property
    def added_latency(self) -> float:
        return self.duration if self.added is None else self.added

    def note(self, **notes: Any) -> None:
        if self.notes is None:
            self.notes = {}
        self.notes.update(notes)

    def finish(self, began: float, status: RunStatus, reason: str | None) -> None:
        now = time.time()
        self.end_time = now
        self.duration += now - began
        if status == SUCCESS and self.masked_entity_count:
            status = INTERVENED if self.notes is None or self.notes.get("enforced", True) \
                else WOULD_HAVE
        if _RANK[status] >= _RANK[self.status]:
            self.status = status
            self.reason = reason if reason is not None else self.reason

    def mask_counted(self, counts: Mapping[str, int]) -> None:
        mine = self.masked_entity_count
        if mine is None:
            mine = self.masked_entity_count = {}
        for entity, count in counts.items():
            if count:
                mine[entity] = mine.get(entity, 0) + count


CURRENT: ContextVar[GuardrailRun | None] = ContextVar("gatehouse_guardrail_run", default=None)


def begin(call: Call, impl: HookImpl, began: float) -> GuardrailRun:
    """The record of ``impl``'s guardrail in its mode on this call: the one a previous chunk
    of the stream made, else a new one."""
    runs = call.guardrail_runs
    if runs is None:
        runs = call.guardrail_runs = []
    for run in reversed(runs):
        if run.name == impl.name and run.mode == impl.mode:
            return run
    assert impl.guardrail is not None
    # not_run until it finishes: a run cancelled midway never reached a verdict.
    run = GuardrailRun(impl.name, impl.guardrail.params.guardrail, impl.mode, NOT_RUN,
                       start_time=began)
    runs.append(run)
    return run


def redacted(answer: Any, secret: str | None = None) -> Any:
    """A vendor's answer as it may be logged: fields named like credentials replaced, and the
    guardrail's own key wherever it was echoed."""
    if isinstance(answer, dict):
        return {k: REDACTED if isinstance(k, str) and looks_secret(k) and v is not None
                else redacted(v, secret) for k, v in answer.items()}
    if isinstance(answer, list):
        return [redacted(v, secret) for v in answer]
    if isinstance(answer, str) and secret and secret in answer:
        return answer.replace(secret, REDACTED)
    return answer


def note_answer(answer: Any, secret: str | None) -> None:
    """Keep a vendor's answer on the running guardrail's record (outside a hook: nothing)."""
    run = CURRENT.get()
    if run is not None:
        run.response = redacted(answer, secret)


def settle(call: Call, selection: Selection, status: int) -> None:
    """Add a ``not_run`` record, saying why, for every guardrail and mode the call was
    selected for and never reached. Off the request path, once the call has ended."""
    runs = call.guardrail_runs
    if runs is None:
        runs = call.guardrail_runs = []
    done = {(run.name, run.mode) for run in runs}
    missed = [impl for impl in selection.planned if (impl.name, impl.mode) not in done]
    if not missed:
        return  # most calls: every step ran
    # The guardrail that blocked, answered or failed closed, if one did.
    stopper = next((r for r in runs if r.status in (INTERVENED, FAILED)
                    and call.verdicts.get(r.name) in STOPPED), None)
    for impl in missed:
        if (impl.name, impl.mode) in done:
            continue
        done.add((impl.name, impl.mode))
        assert impl.guardrail is not None
        runs.append(GuardrailRun(impl.name, impl.guardrail.params.guardrail, impl.mode,
                                 NOT_RUN, reason=_why_not(impl.mode, stopper, status)))


def _why_not(mode: str, stopper: GuardrailRun | None, status: int) -> str:
    if stopper is not None:
        return (f"guardrail {stopper.name!r} ({stopper.mode}) ended the call before its "
                f"{mode} step")
    if status >= 400:
        return f"the call ended (status {status}) before its {mode} step"
    return f"the call did not reach its {mode} step"


def information(call: Call) -> list[dict[str, Any]] | None:
    """The call's ``guardrail_information`` (None when no guardrail was selected)."""
    runs = call.guardrail_runs
    return None if runs is None else [run.logged() for run in runs]

