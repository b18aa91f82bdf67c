"""Running guardrail hooks: one at a time or all at once, each under its own timeout and
``on_error`` policy, so one guardrail's failure is handled by that guardrail's settings alone;
and what a guardrail's ``enforce``, ``latency_budget_ms`` and shadows change about a run.

pluggy validates and holds the hook implementations; the core calls each one itself rather than
through ``pm.hook.<name>(...)`` because every guardrail needs its own timeout, error policy and
"applied" record, and sequential hooks must see each other's rewrites.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import GuardrailFailed
from . import monitoring
from .budgets import within_budget
from .judging import REWROTE, Isolated, Verdict, judge
from .shadows import start_shadows

if TYPE_CHECKING:
    from .call import Call
    from .base import Guardrail

log = logging.getLogger("gatehouse.guardrails")


@dataclass(frozen=True, slots=True)
class HookImpl:
    """One implementation of one hook, with the arguments it asked for. ``name`` is the
    guardrail's name, or the plugin's for a plugin-module callback (``guardrail`` is None);
    ``mode`` the guardrail mode the hook runs in (empty for callbacks); ``shadows`` the hooks
    of the guardrails whose ``shadow_of`` is this one, in the same mode."""

    name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    guardrail: Guardrail | None = None
    mode: str = ""
    shadows: tuple[HookImpl, ...] = ()


async def run_one(impl: HookImpl, call: Call, args: dict[str, Any]) -> None:
    """Run one hook; a block propagates, a vendor failure or timeout goes through ``on_error``,
    and a crash always fails closed. Each run is recorded on the call (``monitoring``).

    With ``enforce: false`` the hook runs on copies and its run only records what it would
    have done. Past its ``latency_budget_ms`` a run gives up, fails the call, or (``demote``)
    finishes off the request path. Shadows start beside it, on copies, off the request
    path."""
    guardrail = impl.guardrail
    assert guardrail is not None
    params = guardrail.params
    began = time.time()
    run = monitoring.begin(call, impl, began)
    enforced = params.enforce
    if not enforced:
        run.note(enforced=False)
    budget = params.latency_budget_ms
    demotes = budget is not None and params.on_budget_exceeded == "demote"
    status, reason = monitoring.NOT_RUN, "cancelled before it reached a verdict"
    stop: Exception | None = None
    demoted = False
    watch = start_shadows(impl, call, args) if impl.shadows else None
    try:
        isolated = Isolated(impl, call, args, keep_before=demotes) if not enforced or demotes \
            else None
        judging = judge(impl, call, isolated.args if isolated else args, run)
        verdict = await (judging if budget is None else within_budget(
            impl, call, run, judging, isolated, watch.finished if watch else None))
        if verdict is None:
            demoted = True  # it finishes, and records itself, off the request path
            return
        if verdict.kind == "passed" and isolated is not None:
            if not enforced and isolated.changed():
                verdict = Verdict("rewrote", reason=REWROTE)
            elif enforced:
                isolated.adopt()
        status, reason, stop = _apply(call, guardrail, verdict, enforced)
    finally:
        # A demoted run finishes off the request path, and tells its shadows then.
        if not demoted:
            run.finish(began, status, reason)
            if watch is not None:
                watch.finished(run)
    if stop is not None:
        raise stop


def _apply(call: Call, guardrail: Guardrail, verdict: Verdict, enforced: bool
           ) -> tuple[monitoring.RunStatus, str | None, Exception | None]:
    """Mark the call with a run's verdict: the run's status and reason, and what stops the
    call (a block, a closed failure) when the guardrail enforces."""
    name = guardrail.name
    if verdict.kind == "failed":
        assert verdict.reason is not None
        if not enforced:
            log.warning("guardrail %r (not enforced) failed: %s", name, verdict.reason)
            call.mark(name, "failed_open")
            return monitoring.FAILED, verdict.reason, None
        fail_open = verdict.may_open and (verdict.fail_open if verdict.fail_open is not None
                                          else guardrail.params.on_error == "fail_open")
        return monitoring.FAILED, verdict.reason, _failed(call, guardrail, verdict.reason,
                                                          timeout=verdict.timeout,
                                                          fail_open=fail_open)
    if verdict.kind == "passed":
        call.mark(name, "passed" if enforced else "monitored")
        return monitoring.SUCCESS, None, None
    if not enforced:
        call.mark(name, "would_have_blocked" if verdict.kind == "blocked"
                  else "would_have_rewritten")
        return monitoring.WOULD_HAVE, verdict.reason, None
    call.mark(name, "blocked")
    return monitoring.INTERVENED, verdict.reason, verdict.blocked


def _failed(call: Call, guardrail: Guardrail, reason: str, *, timeout: bool,
            fail_open: bool) -> GuardrailFailed | None:
    if fail_open:
        log.warning("guardrail %r failed open: %s", guardrail.name, reason)
        call.mark(guardrail.name, "failed_open")
        return None
    log.warning("guardrail %r failed closed: %s", guardrail.name, reason)
    call.mark(guardrail.name, "failed_closed")
    return GuardrailFailed(guardrail.name, reason, timeout=timeout)


async def run_in_order(impls: Sequence[HookImpl], call: Call, args: dict[str, Any]) -> None:
    for impl in impls:
        args["extra_body"] = call.guardrail_extra.get(impl.name) or {}
        await run_one(impl, call, args)


async def run_together(impls: Sequence[HookImpl], call: Call) -> None:
    """Run hooks concurrently; the first block or closed failure cancels the rest."""
    if len(impls) == 1:
        return await run_in_order(impls, call, {"call": call})
    try:
        async with asyncio.TaskGroup() as group:
            for impl in impls:
                args = {"call": call, "extra_body": call.guardrail_extra.get(impl.name) or {}}
                group.create_task(run_one(impl, call, args))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None


async def run_callbacks(impls: Sequence[HookImpl], args: dict[str, Any]) -> bool:
    """Callbacks and logging hooks: every one runs; a failure is logged, never raised.
    Returns whether all of them succeeded. Logging hooks are guardrail runs, recorded on the
    call like the others."""
    ok = True
    for impl in impls:
        run = token = None
        if impl.mode:
            began = time.time()
            run = monitoring.begin(args["call"], impl, began)
            run.added = 0.0  # the call log runs these, off the request path
            token = monitoring.CURRENT.set(run)
        status, reason = monitoring.SUCCESS, None
        # A logging hook that does not enforce masks a copy of the record.
        isolated = None if impl.guardrail is None or impl.guardrail.params.enforce else \
            Isolated(impl, args["call"], args)
        try:
            result = impl.function(*[(isolated.args if isolated else args)[name]
                                     for name in impl.argnames])
            if inspect.isawaitable(result):
                await result
            if isolated is not None and isolated.changed():
                status, reason = monitoring.WOULD_HAVE, "would have masked the record"
        except Exception as exc:  # noqa: BLE001 - one callback must not stop the others
            ok = False
            status, reason = monitoring.FAILED, f"internal error ({type(exc).__name__})"
            log.error("%s hook of %r failed", impl.function.__name__, impl.name, exc_info=exc)
        finally:
            if run is not None and token is not None:
                monitoring.CURRENT.reset(token)
                run.finish(began, status, reason)
    return ok
