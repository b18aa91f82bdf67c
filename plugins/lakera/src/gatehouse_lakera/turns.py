"""The messages sent to Lakera, each tied to the places in the request or reply its text came
from, so spans Lakera reports (``message_id`` plus offsets into that message's text) can be
masked where the text lives."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gatehouse.guardrails.text import Slot, request_slots, response_slots

# Joins a message's text parts (content parts, tool-call arguments) into the one string sent;
# offsets in Lakera's spans count it.
SEPARATOR = "\n"


@dataclass(slots=True)
class Turn:
    role: str
    slots: list[Slot]

    @property
    def text(self) -> str:
        return SEPARATOR.join(container[key] for container, key in self.slots)

    def as_message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.text}

    def mask(self, spans: Iterable[tuple[int, int, str]]) -> None:
        """Replace each ``(start, end, label)`` span of :attr:`text` with its label.

        Spans are applied from the end backwards so earlier offsets stay valid; a span that
        overlaps one already masked is cut short at it. A span across parts puts its label in
        the first part and removes the rest of the match from the others.
        """
        starts, lengths, offset = [], [], 0
        for container, key in self.slots:
            starts.append(offset)
            lengths.append(len(container[key]))
            offset += lengths[-1] + len(SEPARATOR)
        limit = offset
        for start, end, label in sorted(spans, reverse=True):
            end = min(end, limit)
            hits = [i for i, (s, n) in enumerate(zip(starts, lengths))
                    if max(start, s) < min(end, s + n)]
            for i in reversed(hits):
                container, key = self.slots[i]
                lo, hi = max(start - starts[i], 0), min(end - starts[i], lengths[i])
                text = container[key]
                container[key] = text[:lo] + (label if i == hits[0] else "") + text[hi:]
            limit = min(limit, start)


def conversation(body: dict[str, Any]) -> list[Turn]:
    """One turn per chat message, then one ``user`` turn per ``prompt`` / ``input`` string;
    turns without text are left out (they would only shift ``message_id``)."""
    turns = [Turn(str(m.get("role", "user")), list(request_slots({"messages": [m]})))
             for m in body.get("messages") or () if isinstance(m, dict)]
    # request_slots yields message text first, so what follows it is prompt / input text.
    loose = list(request_slots(body))[sum(len(t.slots) for t in turns):]
    turns += [Turn("user", [slot]) for slot in loose]
    return [t for t in turns if t.text]


def reply_turn(response: dict[str, Any]) -> Turn:
    """The assistant turn of a reply's first choice (content and tool-call arguments)."""
    first = next((c for c in response.get("choices") or ()
                  if isinstance(c, dict) and c.get("index", 0) == 0), None)
    slots = list(response_slots({"choices": [first]})) if first is not None else []
    return Turn("assistant", slots)
