"""The classification prompt: which side to judge, the categories, and the conversation."""

from __future__ import annotations

import re
from typing import Any, Literal

from gatehouse.guardrails.text import message_role_texts, response_texts

from .categories import Categories

Speaker = Literal["User", "Agent"]
Turn = tuple[Speaker, str]

# A section marker inside a message could end the conversation early and let the message pose
# as instructions to the classifier; such markers are defused before they reach the prompt.
_MARKER = re.compile(r"<(\s*(?:BEGIN|END)\s+(?:UNSAFE\s+CONTENT\s+CATEGORIES|CONVERSATION)\s*)>",
                     re.IGNORECASE)


def request_turns(body: dict[str, Any]) -> list[Turn]:
    """The conversation a request carries, as Llama Guard's two speakers.

    Everything but the assistant's turns came from the gateway's caller -- system prompts and
    tool results included -- so all of it is judged as the ``User`` side.
    """
    return [("Agent" if role == "assistant" else "User", text)
            for role, text in message_role_texts(body) if text.strip()]


def reply_turn(response: dict[str, Any]) -> list[Turn]:
    """The upstream's reply as one ``Agent`` turn, or nothing when it holds no text.

    Tool-call arguments count as the reply too, and every choice is judged, since all of them
    reach the client.
    """
    text = "\n".join(t for t in response_texts(response) if t.strip())
    return [("Agent", text)] if text else []


class PromptBuilder:
    """Builds prompts for one category list; the fixed text around the conversation is made
    once, here, not per call."""

    def __init__(self, categories: Categories) -> None:
        self._frames = {speaker: _frame(speaker, categories.text)
                        for speaker in ("User", "Agent")}

    def build(self, judged: Speaker, turns: list[Turn]) -> str:
        head, tail = self._frames[judged]
        conversation = "\n\n".join(f"{speaker}: {_defuse(text)}" for speaker, text in turns)
        return head + conversation + tail


def _frame(judged: Speaker, categories: str) -> tuple[str, str]:
    head = (
        f"You are a content safety classifier. Decide whether the final {judged} turn of the "
        f"conversation below breaks the safety policy set out by these unsafe content "
        f"categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{categories}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n"
    )
    tail = (
        f"\n\n<END CONVERSATION>\n\n"
        f"Judge only the final {judged} turn above. Answer with the word safe or unsafe on the "
        f"first line. When the answer is unsafe, give the codes of the violated categories on "
        f"the second line, separated by commas."
    )
    return head, tail


def _defuse(text: str) -> str:
    return _MARKER.sub(r"(\1)", text)
