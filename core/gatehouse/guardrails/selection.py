"""Which guardrail hooks a call runs: the request's ``guardrails`` field parsed, the key's and
the config's guardrails added, and the plan of hooks by mode, built once per distinct set of
guardrails and cached."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ClientError
from .streaming import reply_as_stream

if TYPE_CHECKING:
    from .call import Call, Principal
    from .dispatch import HookImpl
    from .registry import GuardrailSet, LiveGuardrails

SELECTION_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Selection:
    names: tuple[str, ...]
    pre_call: tuple[HookImpl, ...]
    during_call: tuple[HookImpl, ...]
    post_call: tuple[HookImpl, ...]
    # On streams: per-chunk hooks, and the post_call hooks of guardrails that have no
    # per-chunk hook (they see the assembled reply, so all content is held back for them).
    post_call_stream: tuple[HookImpl, ...]
    post_call_assembled: tuple[HookImpl, ...]
    stream_holdback: float
    logging_only: tuple[HookImpl, ...]
    on_success: tuple[HookImpl, ...]
    on_failure: tuple[HookImpl, ...]
    # One hook per guardrail and mode the call may run: what its records are checked against
    # when it ends (``monitoring.settle``).
    planned: tuple[HookImpl, ...] = ()
    # A default_on logging_only guardrail is not among ``names`` (a key's permissions switched
    # it off): the record keeps what it would have masked, so its text is never stored.
    unmasked_log: bool = False

    @property
    def checks_stream(self) -> bool:
        return bool(self.post_call_stream or self.post_call_assembled)

    @property
    def wants_record(self) -> bool:
        return bool(self.logging_only or self.on_success or self.on_failure)


class Selector:
    def __init__(self, guardrails: LiveGuardrails):
        self.guardrails = guardrails

    def select(self, call: Call, requested: Any, principal: Principal) -> Selection:
        """The guardrails for this call: default_on, the key's, and the request's."""
        # Read once: the set, and the plans cached with it, may be replaced meanwhile.
        current = self.guardrails.current
        guardrails = current.by_name
        wanted = parse_requested(requested, guardrails)
        call.guardrail_extra = wanted
        names = set(current.default_on)
        names.update(principal.guardrails)
        names.update(wanted)
        # A shadow never runs on its own: it comes with its target (build_selection).
        chosen = tuple(
            name for name, guardrail in guardrails.items()
            if name in names and guardrail.params.shadow_of is None and not (
                guardrail.permission is not None
                and principal.permissions.get(guardrail.permission) is False)
        )
        selections = current.selections
        selection = selections.get(chosen)
        if selection is None:
            if len(selections) >= SELECTION_CACHE_SIZE:
                selections.clear()
            selection = build_selection(current, chosen)
            selections[chosen] = selection
        return selection


def build_selection(guardrails: GuardrailSet, names: tuple[str, ...]) -> Selection:
    hooks = guardrails.hooks
    shadows = _shadows_by_target(guardrails)

    def with_shadows(impl: HookImpl) -> HookImpl:
        """``impl`` with the hooks its guardrail's shadows have for the same mode."""
        found = []
        for name in shadows.get(impl.name, ()):
            own = hooks[name]
            if impl.mode not in guardrails[name].params.mode:
                continue
            if impl.mode == "post_call":
                found.append(reply_hook(own))
            elif impl.mode in own:
                found.append(own[impl.mode])
        return replace(impl, shadows=tuple(found)) if found else impl

    def mode_hooks(mode: str, hook: str) -> tuple[HookImpl, ...]:
        return tuple(
            with_shadows(hooks[n][hook]) for n in names
            if mode in guardrails[n].params.mode and hook in hooks[n]
        )

    # Shadows see whole requests and replies, never a stream's chunks one by one.
    per_chunk = tuple(replace(i, shadows=()) for i in mode_hooks("post_call",
                                                                  "post_call_stream"))
    chunked = {impl.name for impl in per_chunk}
    assembled = tuple(i for i in mode_hooks("post_call", "post_call") if i.name not in chunked)
    # On whole replies, a guardrail that only checks streams sees the reply as one chunk.
    post_call = tuple(
        with_shadows(reply_hook(hooks[n]))
        for n in names if "post_call" in guardrails[n].params.mode)
    holdback = max((guardrails[i.name].stream_holdback for i in per_chunk), default=0)
    if assembled:
        holdback = math.inf

    def callbacks(hook: str) -> tuple[HookImpl, ...]:
        own = tuple(hooks[n][hook] for n in names if hook in hooks[n])
        return guardrails.callbacks[hook] + own

    pre_call = mode_hooks("pre_call", "pre_call")
    during_call = mode_hooks("during_call", "during_call")
    logging = mode_hooks("logging_only", "logging_only")
    return Selection(
        names=names,
        pre_call=pre_call,
        during_call=during_call,
        post_call=post_call,
        post_call_stream=per_chunk,
        post_call_assembled=assembled,
        stream_holdback=holdback,
        logging_only=logging,
        on_success=callbacks("on_success"),
        on_failure=callbacks("on_failure"),
        planned=(*pre_call, *during_call, *post_call, *logging),
        unmasked_log=any(
            name not in names and "logging_only" in guardrails[name].params.mode
            and guardrails[name].params.shadow_of is None for name in guardrails.default_on),
    )


def reply_hook(hooks: Mapping[str, HookImpl]) -> HookImpl:
    """A guardrail's hook on a whole reply: its ``post_call``, else its per-chunk hook run on
    the reply as one chunk."""
    return hooks["post_call"] if "post_call" in hooks else reply_as_stream(
        hooks["post_call_stream"])


def _shadows_by_target(guardrails: GuardrailSet) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, guardrail in guardrails.items():
        target = guardrail.params.shadow_of
        if target is not None:
            found.setdefault(target, []).append(name)
    return found


def parse_requested(value: Any, configured: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The request's ``guardrails``: a list of names, or ``{name: {"extra_body": {...}}}``.
    Returns name -> extra_body; unknown names and wrong shapes are a 400."""
    if value is None:
        return {}
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _bad_shape()
        wanted = {name: {} for name in value}
    elif isinstance(value, dict):
        wanted = {}
        for name, spec in value.items():
            extra = (spec or {}).get("extra_body", {}) if isinstance(spec, dict) else None
            if spec is not None and not isinstance(extra, dict):
                raise _bad_shape()
            wanted[name] = extra or {}
    else:
        raise _bad_shape()
    unknown = [name for name in wanted if name not in configured]
    if unknown:
        raise ClientError(
            400, f"Unknown guardrail(s) in request: {', '.join(unknown)}. "
                 f"Configured guardrails: {', '.join(configured) or 'none'}",
            param="guardrails")
    return wanted


def _bad_shape() -> ClientError:
    return ClientError(
        400, "'guardrails' must be a list of guardrail names or an object "
             "{name: {\"extra_body\": {...}}}", param="guardrails")
