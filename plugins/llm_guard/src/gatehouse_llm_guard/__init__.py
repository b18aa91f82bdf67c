"""Gatehouse plugin: the ``llm_guard`` guardrail (``llmguard_moderations`` in ``callbacks:``),
which asks an LLM Guard API server whether a prompt, or a reply, is valid."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import LLMGuard, LLMGuardParams

__all__ = ["LLMGuard", "LLMGuardParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("llm_guard", LLMGuard, aliases=["llmguard_moderations"])
