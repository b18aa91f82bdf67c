"""The text a moderation check is given."""

from __future__ import annotations

from typing import Any

from gatehouse.guardrails.text import message_role_texts, response_texts


def caller_text(body: dict[str, Any], separator: str) -> str:
    """What the caller wrote: every message but the assistant's earlier turns (system
    prompts and tool results came from the caller too), then a completion's ``prompt`` or an
    embedding's ``input``; joined by ``separator``."""
    return separator.join(text for role, text in message_role_texts(body)
                          if role != "assistant" and text)


def all_message_text(body: dict[str, Any]) -> str:
    """Every message's text run together, as LiteLLM's ``openai_moderations`` callback
    sends it (``prompt`` / ``input`` of other calls included)."""
    return "".join(text for _, text in message_role_texts(body))


def reply_text(response: dict[str, Any]) -> str:
    """Every choice's text (content and tool-call arguments): all of it reaches the client."""
    return "\n".join(text for text in response_texts(response) if text)
