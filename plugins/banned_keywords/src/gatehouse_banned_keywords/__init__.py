"""gatehouse-banned-keywords: the ``banned_keywords`` guardrail, which refuses a call whose
request or reply holds one of a list of keywords."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import BannedKeywords, BannedKeywordsParams
from .matcher import KeywordMatcher

__all__ = ["BannedKeywords", "BannedKeywordsParams", "KeywordMatcher", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    # The type name is also LiteLLM's callback name, so `callbacks: ["banned_keywords"]` works.
    register("banned_keywords", BannedKeywords)
