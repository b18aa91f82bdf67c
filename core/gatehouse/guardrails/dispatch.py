"""Running guardrail hooks: one at a time or all at once, each under its own timeout and
``on_error`` policy, so one guardrail's failure is handled by that guardrail's settings alone.

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
from .base import GuardrailBlocked, GuardrailError

if TYPE_CHECKING:
    from .call import Call
    from .base import Guardrail

log = logging.getLogger("gatehouse.guardrails")


@dataclass(frozen=True, slots=True)
class HookImpl:
    """One implementation of one hook, with the arguments it asked for. ``name`` is the
    guardrail's name, or the plugin's for a plugin-module callback (``guardrail`` is None);
    ``mode`` the guardrail mode the hook runs in (empty for callbacks)."""

    name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    guardrail: Guardrail | None = None
    mode: str = ""


async def run_one(impl: HookImpl, call: Call, args: dict[str, Any]) -> None:
    """Run one hook; a block propagates, a vendor failure or timeout goes through ``on_error``,
    and a crash always fails closed. Each run is recorded on the call (``monitoring``)."""
    guardrail = impl.guardrail
    assert guardrail is not None
    params = guardrail.params
    began = time.time()
    run = monitoring.begin(call, impl, began)
    token = monitoring.CURRENT.set(run)
    status, reason = monitoring.SUCCESS, None
    try:
        result = impl.function(*[args[name] for name in impl.argnames])
        # A sync hook has already finished here, so only an awaitable needs a timeout.
        if inspect.isawaitable(result):
            async with asyncio.timeout(params.timeout):
                await result
    except GuardrailBlocked as blocked:
        status, reason = monitoring.INTERVENED, blocked.message
        call.mark(guardrail.name, "blocked")
        raise
    except TimeoutError:
        source = f" from {guardrail.vendor}" if guardrail.vendor else ""
        status = monitoring.FAILED
        reason = f"no verdict{source} within {params.timeout:g}s"
        _failed(call, guardrail, reason, timeout=True)
    except GuardrailError as exc:
        status, reason = monitoring.FAILED, str(exc)
        _failed(call, guardrail, reason, timeout=exc.timeout)
    except Exception as exc:  # noqa: BLE001 - whatever a guardrail raises is contained here
        log.error("guardrail %r crashed in %s", guardrail.name, impl.function.__name__,
                  exc_info=exc)
        # fail_open is for a vendor that cannot answer. A crash may have been provoked by the
        # request itself, and failing open on it would let a client switch the guardrail off.
        status, reason = monitoring.FAILED, f"internal error ({type(exc).__name__})"
        _failed(call, guardrail, reason, timeout=False, may_open=False)
    except BaseException:
        # Cancelled: another guardrail blocked alongside it, or the client left.
        status, reason = monitoring.NOT_RUN, "cancelled before it reached a verdict"
        raise
    else:
        call.mark(guardrail.name, "passed")
    finally:
        monitoring.CURRENT.reset(token)
        run.finish(began, status, reason)


def _failed(call: Call, guardrail: Guardrail, reason: str, *, timeout: bool,
            may_open: bool = True) -> None:
    if may_open and guardrail.params.on_error == "fail_open":
        log.warning("guardrail %r failed open: %s", guardrail.name, reason)
        call.mark(guardrail.name, "failed_open")
        return
    log.warning("guardrail %r failed closed: %s", guardrail.name, reason)
    call.mark(guardrail.name, "failed_closed")
    raise GuardrailFailed(guardrail.name, reason, timeout=timeout)


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
            token = monitoring.CURRENT.set(run)
        status, reason = monitoring.SUCCESS, None
        try:
            result = impl.function(*[args[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - one callback must not stop the others
            ok = False
            status, reason = monitoring.FAILED, f"internal error ({type(exc).__name__})"
            log.error("%s hook of %r failed", impl.function.__name__, impl.name, exc_info=exc)
        finally:
            if run is not None and token is not None:
                monitoring.CURRENT.reset(token)
                run.finish(began, status, reason)
    return ok
