"""The conversation sent to Aim, each message tied to where its text lives in the request, so
Aim's redacted conversation can be written back in place: images, tool calls and every other
field of a message stay as they were.

Aim answers an anonymization with the conversation redacted: ``all_redacted_messages``, and
the newest message on its own as ``redacted_new_message``. LiteLLM puts the new message first
and drops every field but role and content; here the redacted texts are matched to the messages
sent, in order -- ``all_redacted_messages`` covering all of them, or all but the newest, which
``redacted_new_message`` then gives -- and anything else is refused as an answer that does not
fit the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gatehouse import GuardrailError
from gatehouse.guardrails.text import Slot, joined, response_slots, rewrite

from .answer import Entity, Message, Redaction

_TEXT_PARTS = frozenset({"text", "input_text"})


@dataclass(slots=True)
class Turn:
    role: str
    slots: list[Slot]

    @property
    def text(self) -> str:
        return joined(self.slots)

    def as_message(self) -> dict[str, str]:
        return {"role": self.role, "content": self.text}

    def replace(self, text: str) -> None:
        """The whole text in the first slot, the other slots emptied."""
        for i, (container, key) in enumerate(self.slots):
            container[key] = text if i == 0 else ""


def request_turns(body: dict[str, Any]) -> list[Turn]:
    """Each chat message's content (a string, or its text parts), then a completion's
    ``prompt`` or an embedding's ``input`` as user turns; turns without text are left out."""
    turns = []
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            turns.append(Turn(str(message.get("role", "user")), list(_content_slots(message))))
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            turns.append(Turn("user", [(body, key)]))
        elif isinstance(value, list):
            turns += [Turn("user", [(value, i)]) for i, item in enumerate(value)
                      if isinstance(item, str)]
    return [turn for turn in turns if turn.text]


def _content_slots(message: dict[str, Any]) -> Iterator[Slot]:
    content = message.get("content")
    if isinstance(content, str):
        yield message, "content"
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") in _TEXT_PARTS \
                    and isinstance(part.get("text"), str):
                yield part, "text"


def apply_redaction(turns: Sequence[Turn], redaction: Redaction) -> int:
    """Write Aim's redacted conversation over the turns sent; returns how many changed.
    Raises GuardrailError when it does not fit them."""
    redacted = _conversation(len(turns), redaction)
    if redacted is None or any(t.role != m.role for t, m in zip(turns, redacted)):
        raise GuardrailError(f"Aim's redacted conversation ({len(redaction.all_redacted_messages)}"
                             f" messages and the new one) does not fit the {len(turns)} sent")
    changed = 0
    for turn, message in zip(turns, redacted):
        if turn.text != message.content:
            turn.replace(message.content)
            changed += 1
    return changed


def _conversation(sent: int, redaction: Redaction) -> list[Message] | None:
    everything = redaction.all_redacted_messages
    if len(everything) == sent:
        return everything
    if len(everything) == sent - 1 and redaction.redacted_new_message is not None:
        return [*everything, redaction.redacted_new_message]
    return None


def restore(response: dict[str, Any], entities: Sequence[Entity]) -> int:
    """Put each anonymized value back where the reply names it (``[EMAIL_1]``), in one pass
    so a restored value is never read as a name itself; returns how many texts changed."""
    if not entities:
        return 0
    values = {entity.name: entity.content for entity in entities}
    pattern = re.compile(r"\[(" + "|".join(map(re.escape, values)) + r")\]")
    return rewrite(response_slots(response),
                   lambda text: pattern.sub(lambda match: values[match.group(1)], text))
