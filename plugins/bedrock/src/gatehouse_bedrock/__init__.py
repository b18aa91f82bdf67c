"""Gatehouse plugin: the ``bedrock`` guardrail, which applies an AWS Bedrock guardrail
(ApplyGuardrail) to prompts and replies."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import Bedrock, BedrockParams

__all__ = ["Bedrock", "BedrockParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("bedrock", Bedrock)
