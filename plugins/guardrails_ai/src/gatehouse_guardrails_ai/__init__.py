"""Gatehouse plugin: the ``guardrails_ai`` guardrail, which validates text with a guard served
by a Guardrails AI server."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import GuardrailsAI, GuardrailsAIParams

__all__ = ["GuardrailsAI", "GuardrailsAIParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("guardrails_ai", GuardrailsAI)
