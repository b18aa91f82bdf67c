"""Which guardrail hooks a call runs: the request's ``guardrails`` field parsed, and the
per-selection plan of hooks by mode, built once per distinct set of guardrails and cached."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ClientError

if TYPE_CHECKING:
    from .dispatch import HookImpl
    from .gateway import Gateway


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

    @property
    def checks_stream(self) -> bool:
        return bool(self.post_call_stream or self.post_call_assembled)

    @property
    def wants_record(self) -> bool:
        return bool(self.logging_only or self.on_success or self.on_failure)


def build_selection(gateway: Gateway, names: tuple[str, ...]) -> Selection:
    def mode_hooks(mode: str, hook: str) -> tuple[HookImpl, ...]:
        return tuple(
            gateway.hooks[n][hook] for n in names
            if mode in gateway.guardrails[n].params.mode and hook in gateway.hooks[n]
        )

    per_chunk = mode_hooks("post_call", "post_call_stream")
    chunked = {impl.name for impl in per_chunk}
    assembled = tuple(i for i in mode_hooks("post_call", "post_call") if i.name not in chunked)
    holdback = max((gateway.guardrails[i.name].stream_holdback for i in per_chunk), default=0)
    if assembled:
        holdback = math.inf

    def callbacks(hook: str) -> tuple[HookImpl, ...]:
        own = tuple(gateway.hooks[n][hook] for n in names if hook in gateway.hooks[n])
        return gateway.global_callbacks[hook] + own

    return Selection(
        names=names,
        pre_call=mode_hooks("pre_call", "pre_call"),
        during_call=mode_hooks("during_call", "during_call"),
        post_call=mode_hooks("post_call", "post_call"),
        post_call_stream=per_chunk,
        post_call_assembled=assembled,
        stream_holdback=holdback,
        logging_only=mode_hooks("logging_only", "logging_only"),
        on_success=callbacks("on_success"),
        on_failure=callbacks("on_failure"),
    )


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
