"""Guardrails' stream hooks run as the gateway runs them, without a server: the core's own
stream checks (``StreamGuard``: the hold-back, ``stream.unsent``, the hooks in order, the
``done`` call), fed parsed chunks. For a plugin's unit tests of its ``post_call_stream`` hook,
and for benches; what reaches a client over HTTP is the contracts' business
(:class:`~gatehouse.testing.GuardrailContract`)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from ..guardrails.base import Guardrail
from ..guardrails.call import Call, CallType
from ..guardrails.dispatch import HookImpl
from ..guardrails.selection import Selection
from ..guardrails.streaming import StreamGuard


def stream_guard(guardrails: Sequence[Guardrail],
                 call_type: CallType = "chat_completion") -> StreamGuard:
    """The core's checks of one stream, running each guardrail's ``post_call_stream`` hook
    in order, as a call that selected them in ``post_call`` mode would."""
    hooks = []
    for guardrail in guardrails:
        hook = guardrail.post_call_stream  # type: ignore[attr-defined]
        hooks.append(HookImpl(guardrail.name, hook, tuple(inspect.signature(hook).parameters),
                              guardrail, "post_call"))
    selection = Selection(
        names=tuple(g.name for g in guardrails), pre_call=(), during_call=(), post_call=(),
        post_call_stream=tuple(hooks), post_call_assembled=(),
        stream_holdback=max((g.stream_holdback for g in guardrails), default=0),
        logging_only=(), on_success=(), on_failure=())
    call = Call(request_id="stream-test", call_type=call_type, model="test", body={},
                stream=True)
    return StreamGuard(call, selection)


async def sent_chunks(guard: StreamGuard, chunks: Iterable[dict[str, Any]]
                      ) -> list[list[dict[str, Any]]]:
    """Each upstream chunk fed to ``guard`` in turn, then the end of the stream: what the
    client is sent after each (parsed), the end's last. A block raises
    :class:`~gatehouse.GuardrailBlocked` (or a failure ``GuardrailFailed``) as in the
    gateway."""
    sent = [[orjson.loads(out) for out in await guard.feed(chunk)] for chunk in chunks]
    sent.append([orjson.loads(out) for out in await guard.finish()])
    return sent


def texts_of(chunks: Iterable[dict[str, Any]]) -> str:
    """Choice 0's content (or completion text) in ``chunks``, joined."""
    text = []
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                delta = choice.get("delta")
                text.append((delta.get("content") if isinstance(delta, dict)
                             else choice.get("text")) or "")
    return "".join(text)
