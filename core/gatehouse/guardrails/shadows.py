"""Shadow guardrails (``shadow_of: <name>``): a candidate run beside an enforcing guardrail on
the same calls, in the modes both have, on copies of what the enforcing one sees, off the
request path and at most ``shadow_concurrency`` at once (a run past that is skipped and
recorded ``not_run``). Its record says what it would have done and whether that differs from
its target's verdict; a difference is also logged, and counted in metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from . import monitoring
from .judging import Isolated, kind_of, trial

if TYPE_CHECKING:
    from .call import Call
    from .dispatch import HookImpl

log = logging.getLogger("gatehouse.guardrails")


class Watch:
    """The target's input as it was before the target ran, and its verdict once it has."""

    __slots__ = ("snapshot", "verdict")

    def __init__(self, impl: HookImpl, call: Call, args: dict[str, Any]):
        self.snapshot = Isolated(impl, call, args)
        self.verdict: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def finished(self, run: monitoring.GuardrailRun) -> None:
        """The target's run has ended (told at once: a later guardrail may rewrite the call
        before the shadows look)."""
        if self.verdict.done():
            return
        kind = kind_of(run)
        if kind == "passed" and self.snapshot.changed():
            kind = "rewrote"
        self.verdict.set_result(kind)


def start_shadows(impl: HookImpl, call: Call, args: dict[str, Any]) -> Watch:
    """Start ``impl``'s shadows on what ``impl`` is about to see."""
    watch = Watch(impl, call, args)
    seen = watch.snapshot.args
    for shadow in impl.shadows:
        guardrail = shadow.guardrail
        assert guardrail is not None and guardrail.engine is not None
        params = guardrail.params
        if not guardrail.engine.claim(shadow.name, params.shadow_concurrency):
            run = _record(shadow, call, impl.name, None)
            run.reason = (f"skipped: {params.shadow_concurrency} shadow runs already in "
                          f"flight")
            continue
        # Copies of the snapshot, so its rewrites are told against what the target saw.
        mine = Isolated(shadow, seen.get("call", call), {
            **seen, "extra_body": call.guardrail_extra.get(shadow.name) or {}})
        guardrail.engine.background(call, _shadow(shadow, call, mine, watch, impl.name))
    return watch


def _record(shadow: HookImpl, call: Call, target: str, began: float | None
            ) -> monitoring.GuardrailRun:
    assert shadow.guardrail is not None
    run = monitoring.GuardrailRun(shadow.name, shadow.guardrail.params.guardrail, shadow.mode,
                                  monitoring.NOT_RUN, start_time=began, added=0.0)
    run.note(enforced=False, shadow_of=target)
    if call.guardrail_runs is None:
        call.guardrail_runs = []
    call.guardrail_runs.append(run)
    return run


async def _shadow(shadow: HookImpl, call: Call, mine: Isolated, watch: Watch,
                  target: str) -> None:
    assert shadow.guardrail is not None and shadow.guardrail.engine is not None
    began = time.time()
    run = _record(shadow, call, target, began)
    status, reason = monitoring.NOT_RUN, "cancelled before it reached a verdict"
    try:
        status, reason = await trial(shadow, call, mine, run)
    finally:
        run.finish(began, status, reason)
        shadow.guardrail.engine.release(shadow.name)
    ours, theirs = kind_of(run), await watch.verdict
    differ = ours != theirs
    run.note(verdict=ours, target_verdict=theirs, verdicts_differ=differ)
    if differ:
        log.warning("shadow guardrail %r disagrees with %r on request %s (%s): the shadow %s, "
                    "the guardrail %s", shadow.name, target, call.request_id, shadow.mode,
                    ours, theirs)
