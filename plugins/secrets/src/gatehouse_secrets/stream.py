"""Redacting a streamed reply before any part of a secret is sent.

The core's ``stream_holdback`` keeps content back so that a check can still *block*, but content
a chunk has handed over can no longer be rewritten; so this guardrail keeps a window of its own.
Each chunk's text joins a buffer per text slot (a choice's content, each of its tool calls'
arguments) and the chunk carries on only the part of the buffer that is final:

* the last ``WINDOW`` characters stay back, so that the name of an assignment, or the header of a
  PEM block, is still in the buffer when the value or the key arrives;
* the cut falls just after a space (or a non-ASCII character, so that CJK replies still stream):
  the secrets found are runs of ASCII without spaces, so none is split;
* a secret found across or after the cut moves the cut before the match that found it, name and
  all: an unfinished PEM block, which runs to the end of the buffer, is held until its END line.

What is still held is sent with the chunk that carries the choice's ``finish_reason``.

The walk over chunk fields is done here rather than with ``gatehouse.guardrails.text`` because a
buffer needs to know which slot a piece continues (a tool call's ``index``), which its slots do
not say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .scanner import Finding, Scanner, apply, types_of

#: Characters held back at the end of each slot's buffer. Covers a keyword assignment's name and
#: operator, a PEM header, and a quoted value with spaces of up to about 80 characters.
WINDOW = 96
#: Fewest new characters worth a rescan. A buffer that cannot be released (a long run without
#: spaces, an unfinished PEM block) is rescanned only after growing by a quarter, so a long reply
#: costs linear rather than quadratic time.
STEP = 32

# The last place a cut may fall: just after whitespace or a non-ASCII character.
_LAST_BOUNDARY = re.compile(r".*[\s\x80-\U0010ffff]", re.DOTALL)

SlotKey = tuple[int, str, int]  # (choice index, "content" | "text" | "tool", tool call index)


@dataclass(slots=True)
class _Held:
    """A slot's text not yet sent, as the pieces it arrived in: joining them on every chunk
    would copy the whole buffer each time, quadratic in a long run that cannot be cut."""

    pieces: list[str] = field(default_factory=list)
    size: int = 0
    # Length of the buffer when it was last scanned.
    scanned: int = 0

    def add(self, piece: str) -> None:
        if piece:
            self.pieces.append(piece)
            self.size += len(piece)


@dataclass
class StreamRedactor:
    scanner: Scanner
    held: dict[SlotKey, _Held] = field(default_factory=dict)

    def feed(self, chunk: dict[str, Any]) -> list[str]:
        """Rewrite ``chunk`` in place to carry only final, redacted text; return the secret
        types redacted in what it now carries."""
        found: set[str] = set()
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            finishing = bool(choice.get("finish_reason"))
            carried = set()
            for key, holder, name in _slots(choice, index):
                carried.add(key)
                holder[name], types = self._release(key, holder[name], finishing)
                found.update(types)
            if finishing:
                for key in [k for k in self.held if k[0] == index and k not in carried]:
                    text, types = self._release(key, "", True)
                    _put(choice, key, text)
                    found.update(types)
        return sorted(found)

    @property
    def holding(self) -> int:
        """Characters received and not yet sent."""
        return sum(held.size for held in self.held.values())

    def _release(self, key: SlotKey, piece: str, final: bool) -> tuple[str, list[str]]:
        held = self.held.pop(key, None) or _Held()
        held.add(piece)
        if not final and held.size - held.scanned < max(STEP, held.scanned // 4):
            if held.size:
                self.held[key] = held
            return "", []
        buffer = "".join(held.pieces)
        findings = self.scanner.find(buffer)
        cut = len(buffer) if final else self._cut(buffer, findings)
        if cut < len(buffer):
            rest = len(buffer) - cut
            self.held[key] = _Held([buffer[cut:]], rest, rest)
        sent = [f for f in findings if f.end <= cut]
        return apply(buffer[:cut], sent), types_of(sent)

    def _cut(self, buffer: str, findings: list[Finding]) -> int:
        cut = _boundary_before(buffer, len(buffer) - WINDOW)
        # A secret not wholly before the cut keeps the text it was found by: cutting between a
        # name and its value would leave a value nothing recognises any more.
        for f in reversed(findings):
            if f.end > cut:
                cut = min(cut, _boundary_before(buffer, f.context))
        return cut


def _boundary_before(buffer: str, limit: int) -> int:
    """The last place a cut may fall at or before ``limit``; 0 if there is none."""
    boundary = _LAST_BOUNDARY.match(buffer, 0, limit) if limit > 0 else None
    return boundary.end() if boundary else 0


def _slots(choice: dict[str, Any], index: int) -> Iterator[tuple[SlotKey, dict[str, Any], str]]:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        if isinstance(delta.get("content"), str):
            yield (index, "content", 0), delta, "content"
        for position, call in enumerate(delta.get("tool_calls") or ()):
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield (index, "tool", call.get("index", position)), function, "arguments"
    elif isinstance(choice.get("text"), str):
        yield (index, "text", 0), choice, "text"


def _put(choice: dict[str, Any], key: SlotKey, text: str) -> None:
    """Add held text for a slot the finishing chunk does not carry."""
    _, kind, tool_index = key
    if kind == "text":
        choice["text"] = text
        return
    delta = choice.setdefault("delta", {})
    if kind == "content":
        delta["content"] = text
    else:
        delta.setdefault("tool_calls", []).append(
            {"index": tool_index, "function": {"arguments": text}})
