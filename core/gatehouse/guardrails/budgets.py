"""Latency budgets (``latency_budget_ms``): how long a guardrail may hold a call up, and what a
run over it does (``on_budget_exceeded``, else the guardrail's ``on_error``): ``fail_open``
gives up on it, ``fail_closed`` fails the call (504), ``demote`` lets the call go on and
finishes the check off the request path -- on copies, so a late rewrite reaches nobody -- and
records its verdict; a block found that way is an alert (a log line, the run's record and so
metrics and callbacks)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from . import monitoring
from .judging import REWROTE, Isolated, Verdict

if TYPE_CHECKING:
    from .call import Call
    from .dispatch import HookImpl

log = logging.getLogger("gatehouse.guardrails")


async def within_budget(impl: HookImpl, call: Call, run: monitoring.GuardrailRun,
                        judging: Coroutine[Any, Any, Verdict], isolated: Isolated | None,
                        ended: Callable[[monitoring.GuardrailRun], None] | None
                        ) -> Verdict | None:
    """The run's verdict if it comes within the budget; past it, a failure to handle, or None
    when the run was demoted to finish off the request path (``ended`` is then told of the
    finished run)."""
    guardrail = impl.guardrail
    assert guardrail is not None and guardrail.params.latency_budget_ms is not None
    params = guardrail.params
    budget = params.latency_budget_ms / 1000
    task = asyncio.ensure_future(judging)
    try:
        return await asyncio.wait_for(asyncio.shield(task), budget)
    except TimeoutError:
        pass
    except BaseException:
        task.cancel()
        raise
    policy = params.on_budget_exceeded or params.on_error
    run.added = budget
    run.note(latency_budget=policy)
    reason = f"no verdict within its latency budget of {params.latency_budget_ms:g}ms"
    if policy == "demote" and guardrail.engine is not None and isolated is not None:
        call.mark(guardrail.name, "demoted")
        guardrail.engine.background(call, _finish(impl, call, run, task, isolated, ended))
        return None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return Verdict("failed", reason=reason, timeout=True, fail_open=policy == "fail_open")


async def _finish(impl: HookImpl, call: Call, run: monitoring.GuardrailRun,
                  task: asyncio.Future[Verdict], isolated: Isolated,
                  ended: Callable[[monitoring.GuardrailRun], None] | None) -> None:
    """A demoted run's end: recorded as a run that did not enforce."""
    assert impl.guardrail is not None and run.start_time is not None
    name = impl.guardrail.name
    status, reason = monitoring.NOT_RUN, "cancelled before it reached a verdict"
    try:
        verdict = await task
        reason = verdict.reason
        if verdict.kind == "failed":
            status = monitoring.FAILED
        elif verdict.kind == "blocked":
            status = monitoring.WOULD_HAVE
            log.warning("ALERT: guardrail %r would have blocked request %s (%s) but was "
                        "demoted past its latency budget: %s", name, call.request_id,
                        impl.mode, reason)
        elif isolated.changed():
            status, reason = monitoring.WOULD_HAVE, REWROTE
        else:
            status = monitoring.SUCCESS
    finally:
        # Its duration is the whole check; ``added`` stays the budget it held the call for.
        run.finish(run.start_time, status, reason)
        if ended is not None:
            ended(run)
