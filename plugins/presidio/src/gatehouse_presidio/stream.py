"""A streamed reply under ``presidio``: nothing is sent that could still need rewriting.

Each text slot of the stream (a choice's content, each of its tool calls' arguments) is held in
a buffer, and a chunk carries on only what is final:

* when the reply itself is checked, nothing is final before the choice finishes: Presidio's
  recognisers read a name or an address by its context, so the whole text is analysed once,
  masked, and sent with the chunk that carries the choice's ``finish_reason``;
* when only tokens are restored, everything is final except a tail that may be the start of a
  token still arriving (``<PERS``), so a token split across chunks is restored whole.

The core's own ``stream_holdback`` only delays text it no longer lets a hook rewrite, so this
guardrail holds back what it needs itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gatehouse.guardrails.call import TextKey
from gatehouse.guardrails.streaming import stream_slots

from .tokens import Tokens

#: Masks and restores the held texts of a finished choice.
Finish = Callable[[list[str]], Awaitable[list[str]]]


class StreamMasker:
    def __init__(self, *, hold_all: bool, tokens: Tokens | None, finish: Finish) -> None:
        self.hold_all = hold_all
        self.tokens = tokens
        self.finish = finish
        self.held: dict[TextKey, str] = {}

    @property
    def holding(self) -> int:
        """Characters received and not yet sent."""
        return sum(map(len, self.held.values()))

    async def feed(self, chunk: dict[str, Any]) -> None:
        """Rewrite ``chunk`` in place to carry only final, masked and restored text."""
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            holders = {}
            for key, (holder, name) in stream_slots(choice):
                self.held[key] = self.held.get(key, "") + holder[name]
                holder[name] = ""
                holders[key] = (holder, name)
            if choice.get("finish_reason"):
                index = choice.get("index", 0)
                keys = [key for key in self.held if key[0] == index]
                texts = await self.finish([self.held.pop(key) for key in keys])
                for key, text in zip(keys, texts):
                    holder, name = holders.get(key) or _slot_in(choice, key)
                    holder[name] = text
            elif not self.hold_all and self.tokens is not None:
                for key, (holder, name) in holders.items():
                    text = self.held[key]
                    cut = self.tokens.final_up_to(text)
                    holder[name], self.held[key] = self.tokens.restore(text[:cut]), text[cut:]


def _slot_in(choice: dict[str, Any], key: TextKey) -> tuple[dict[str, Any], str]:
    """Where a finishing chunk that does not carry a slot's text carries it after all."""
    tool = key[1]
    if "delta" not in choice:
        return choice, "text"
    delta = choice["delta"]
    if tool is None:
        return delta, "content"
    function: dict[str, Any] = {}
    delta.setdefault("tool_calls", []).append({"index": tool, "function": function})
    return function, "arguments"
