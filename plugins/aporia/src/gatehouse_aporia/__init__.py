"""Aporia Guardrails for Gatehouse: the ``aporia`` guardrail type, also accepted in the
``callbacks:`` shorthand as ``aporia_prompt_injection`` and as ``aporio_prompt_injection`` (the
spelling LiteLLM configs use)."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import Aporia

__all__ = ["Aporia", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("aporia", Aporia, aliases=["aporia_prompt_injection", "aporio_prompt_injection"])
