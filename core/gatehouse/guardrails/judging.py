"""One run of one guardrail hook, reduced to a verdict: the hook called under its timeout
(through the verdict cache where it is on), what it raised turned into a :class:`Verdict`, and
the copies a run that must not rewrite the call works on."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from . import monitoring, verdicts
from .base import GuardrailBlocked, GuardrailError
from .engine import clone

if TYPE_CHECKING:
    from .call import Call
    from .dispatch import HookImpl

log = logging.getLogger("gatehouse.guardrails")

Kind = Literal["passed", "rewrote", "blocked", "failed"]


@dataclass(slots=True)
class Verdict:
    """What one run came to. ``rewrote`` is known only of a run on copies."""

    kind: Kind
    blocked: GuardrailBlocked | None = None
    reason: str | None = None
    timeout: bool = False
    # A failure the request may have provoked (a crash) never fails open.
    may_open: bool = True
    # Whether to fail open, when something other than ``on_error`` decides (a latency budget).
    fail_open: bool | None = None


class Isolated:
    """A hook's arguments with copies of what it may rewrite (the request in ``pre_call`` and
    ``during_call``, the reply, the chunk, the log record), for a run whose rewrites must not
    reach the upstream or the client -- or not before it is let to (:meth:`adopt`)."""

    __slots__ = ("args", "_pairs", "_before")

    def __init__(self, impl: HookImpl, call: Call, args: dict[str, Any], *,
                 keep_before: bool = False):
        """``keep_before``: also keep the values as they are now, for a run that ends after
        other guardrails may have rewritten the live ones."""
        self.args = dict(args)
        self._pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        if impl.mode in ("pre_call", "during_call"):
            body = clone(call.body)
            self._pairs.append((call.body, body))
            self.args["call"] = replace(call, body=body)
        for key in ("response", "chunk", "record"):
            if isinstance(args.get(key), dict):
                self.args[key] = clone(args[key])
                self._pairs.append((args[key], self.args[key]))
        self._before = [clone(mine) for _, mine in self._pairs] if keep_before else None

    def changed(self) -> bool:
        """Whether the hook changed its copies (against the live values, or those kept)."""
        if self._before is not None:
            return any(b != mine for b, (_, mine) in zip(self._before, self._pairs))
        return any(live != mine for live, mine in self._pairs)

    def adopt(self) -> None:
        """Make the live values what the hook left in the copies."""
        for live, mine in self._pairs:
            live.clear()
            live.update(mine)


async def invoke(impl: HookImpl, args: dict[str, Any]) -> None:
    result = impl.function(*[args[name] for name in impl.argnames])
    if inspect.isawaitable(result):
        await result


async def judge(impl: HookImpl, call: Call, args: dict[str, Any],
                run: monitoring.GuardrailRun) -> Verdict:
    """The hook's verdict under the guardrail's timeout; what the hook raises becomes the
    verdict, and only cancellation propagates."""
    guardrail = impl.guardrail
    assert guardrail is not None
    params = guardrail.params
    token = monitoring.CURRENT.set(run)
    try:
        async with asyncio.timeout(params.timeout):
            if verdicts.cacheable(impl):
                await verdicts.cached(impl, call, args, lambda a: invoke(impl, a),
                                      run.count_cache)
            else:
                await invoke(impl, args)
    except GuardrailBlocked as blocked:
        return Verdict("blocked", blocked, blocked.message)
    except TimeoutError:
        source = f" from {guardrail.vendor}" if guardrail.vendor else ""
        return Verdict("failed", reason=f"no verdict{source} within {params.timeout:g}s",
                       timeout=True)
    except GuardrailError as exc:
        return Verdict("failed", reason=str(exc), timeout=exc.timeout)
    except Exception as exc:  # noqa: BLE001 - whatever a guardrail raises is contained here
        log.error("guardrail %r crashed in %s", guardrail.name, impl.function.__name__,
                  exc_info=exc)
        # fail_open is for a vendor that cannot answer. A crash may have been provoked by the
        # request itself, and failing open on it would let a client switch the guardrail off.
        return Verdict("failed", reason=f"internal error ({type(exc).__name__})",
                       may_open=False)
    finally:
        monitoring.CURRENT.reset(token)
    return Verdict("passed")


# The reason a run that does not enforce gives for a rewrite it was kept from making.
REWROTE = "would have rewritten the call"


async def trial(impl: HookImpl, call: Call, isolated: Isolated, run: monitoring.GuardrailRun
                ) -> tuple[monitoring.RunStatus, str | None]:
    """Run ``impl`` on ``isolated``'s copies, for what it would have done (a shadow, a
    replay): the status and reason its run records."""
    verdict = await judge(impl, call, isolated.args, run)
    if verdict.kind == "failed":
        return monitoring.FAILED, verdict.reason
    if verdict.kind == "blocked":
        return monitoring.WOULD_HAVE, verdict.reason
    if isolated.changed():
        return monitoring.WOULD_HAVE, REWROTE
    return monitoring.SUCCESS, verdict.reason


def kind_of(run: monitoring.GuardrailRun) -> str:
    """A finished run's verdict as a shadow's is compared with its target's: passed, rewrote,
    blocked, failed or not_run (a rewrite of a run on the live call is told by the caller)."""
    return verdict_kind(run.status, run.reason)


def verdict_kind(status: str, reason: str | None) -> str:
    """:func:`kind_of` a run's status and reason, as a ``guardrail_information`` entry holds
    them (``guardrail_status``, ``status_reason``)."""
    if status in (monitoring.FAILED, monitoring.NOT_RUN):
        return "failed" if status == monitoring.FAILED else "not_run"
    if status == monitoring.SUCCESS:
        return "passed"
    # Intervened: a block gives its message as the reason, a mask none.
    return "blocked" if reason is not None and reason != REWROTE else "rewrote"
