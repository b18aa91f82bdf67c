"""Fallbacks: when a call's model fails upstream, the next model in line answers it.

The line, first found: the request's own ``fallbacks`` (model names, or ``{"model": ...,
<params>}`` whose params replace the request's for that attempt); else the failed model
group's entry in ``router_settings`` (over ``litellm_settings``) -- ``context_window_fallbacks``
for an upstream saying the prompt is too long, ``content_policy_fallbacks`` for one refusing on
its content policy, ``fallbacks`` for the rest -- else ``default_fallbacks``. Each fallback is
tried once, in order; the reply's ``x-litellm-model-*`` headers name the deployment that
answered and ``x-litellm-attempted-fallbacks`` how many fallbacks were tried. When every one
fails, the client gets the first model's error: the one about the model it asked for.

Only an upstream's failure falls back. A request the upstream calls malformed (400, 413, 422)
would be refused by any model, so it is answered at once -- unless it is a context-window or
content-policy refusal, which have lists of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ..errors import ClientError
from ..guardrails.call import FellBack
from .providers import UpstreamError

if TYPE_CHECKING:
    from ..access.model_access import ModelAccess
    from ..config.settings import FallbackSettings
    from ..guardrails.call import Call
    from ..guardrails.selection import Selection
    from .providers import Provider
    from .router import Router

T = TypeVar("T")
Kind = Literal["general", "context_window", "content_policy"]
KINDS: tuple[Kind, ...] = ("general", "context_window", "content_policy")

log = logging.getLogger("gatehouse.fallbacks")

# Upstream statuses that say the request itself is wrong, not the model answering it.
REQUEST_FAULTS = frozenset({400, 413, 422})
CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "context_window_exceeded"})
CONTEXT_WINDOW_WORDS = ("context length", "context window", "maximum context", "too many tokens")
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})
# One fallback, and what it replaces in the request for its attempt.
Fallback = tuple[str, Mapping[str, Any]]


def error_kind(exc: UpstreamError) -> Kind | None:
    """Which fallback list an upstream error calls for; None when it calls for none."""
    error = exc.body.get("error")
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    message = str(error.get("message") or "").lower() if isinstance(error, dict) else ""
    if code in CONTEXT_WINDOW_CODES or any(words in message for words in CONTEXT_WINDOW_WORDS):
        return "context_window"
    if code in CONTENT_POLICY_CODES:
        return "content_policy"
    return None if exc.status in REQUEST_FAULTS else "general"


def _invalid(message: str) -> ClientError:
    return ClientError(400, f"fallbacks: {message}", param="fallbacks")


class Fallbacks:
    def __init__(self, router: Router, access: ModelAccess, *sections: FallbackSettings):
        """``sections`` in rising precedence: a later one's entry for a model wins."""
        self.router = router
        self.access = access
        self.tables: dict[Kind, dict[str, tuple[str, ...]]] = {kind: {} for kind in KINDS}
        self.default: tuple[str, ...] = ()
        for section in sections:
            for kind, entries in (("general", section.fallbacks),
                                  ("context_window", section.context_window_fallbacks),
                                  ("content_policy", section.content_policy_fallbacks)):
                for entry in entries:
                    self.tables[kind].update((model, tuple(to)) for model, to in entry.items())
            self.default = tuple(section.default_fallbacks) or self.default

    def of(self, group: str, kind: Kind = "general") -> tuple[str, ...]:
        """The configured fallbacks of a model group."""
        found = self.tables[kind].get(group)
        if found is None and kind == "general":
            return self.default
        return found or ()

    def requested(self, call: Call, value: Any) -> tuple[Fallback, ...]:
        """The request's own ``fallbacks``, each a model the caller may use: one it may not
        is refused before anything is called, as its model would be (401)."""
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _invalid("expected a list of model names")
        line = []
        for entry in value:
            if isinstance(entry, str) and entry:
                line.append((entry, {}))
            elif isinstance(entry, dict) and isinstance(entry.get("model"), str):
                line.append((entry["model"], {k: v for k, v in entry.items() if k != "model"}))
            else:
                raise _invalid("each fallback is a model name or an object with a 'model'")
        for model, _ in line:
            self.access.check(call.principal, model)
        return tuple(line)

    async def serve(self, call: Call, selection: Selection, provider: Provider,
                    requested: tuple[Fallback, ...],
                    upstream: Callable[[Selection, Provider], Awaitable[T]]) -> T:
        """``upstream(selection, provider)`` for the call's model, then for each fallback in
        turn while the upstream fails."""
        try:
            return await upstream(selection, provider)
        except UpstreamError as first:
            kind = error_kind(first)
            if kind is None:
                raise
            # The group the failed deployment serves (a team alias or wildcard resolved).
            group = call.response_headers.get("x-litellm-model-group", call.model)
            line = requested or tuple((model, {}) for model in self.of(group, kind))
            if not line:
                raise
            # The during_call guardrails have passed on this request already.
            selection = replace(selection, during_call=())
            body = call.body
            fell_back = call.fell_back = FellBack(
                call.model, call.response_headers.get("x-litellm-model-id", ""), first.status,
                first.body)
            for attempt, (model, overrides) in enumerate(line, 1):
                call.model = model
                # One fallback's params are its own, not the next one's.
                call.body = {**body, **overrides} if overrides else body
                try:
                    provider = self.router.provider_for(call)
                except ClientError:
                    log.warning("fallback %r of %r is not a served model; skipped", model, group)
                    continue
                call.response_headers["x-litellm-attempted-fallbacks"] = str(attempt)
                try:
                    served = await upstream(selection, provider)
                except UpstreamError:
                    fell_back.tried.append((model, False))
                    continue
                fell_back.tried.append((model, True))
                return served
            raise first from None
