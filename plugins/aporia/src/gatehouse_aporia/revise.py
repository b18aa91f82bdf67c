"""Putting Aporia's revised text where the text it revised came from, keeping the message's
shape: the first text part takes the revision, other text parts are emptied, images and other
parts stay."""

from __future__ import annotations

from typing import Any

from gatehouse.guardrails.text import Slot, request_slots, response_slots


def revise_prompt(body: dict[str, Any], text: str) -> bool:
    """Replace the last user message's text (for a completion, the last prompt)."""
    if "messages" in body:
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        slots = list(request_slots({"messages": users[-1:]}))
    else:
        slots = list(request_slots(body))[-1:]
    return _replace(slots, text)


def revise_reply(response: dict[str, Any], text: str) -> bool:
    """Replace the content of the reply's first choice (tool-call arguments are left alone)."""
    first = next((c for c in response.get("choices") or ()
                  if isinstance(c, dict) and c.get("index", 0) == 0), None)
    slots = [] if first is None else [
        (container, key) for container, key in response_slots({"choices": [first]})
        if key != "arguments"]
    return _replace(slots, text)


def _replace(slots: list[Slot], text: str) -> bool:
    if not slots:
        return False
    for i, (container, key) in enumerate(slots):
        container[key] = text if i == 0 else ""
    return True
