"""Gatehouse plugin: the ``presidio`` guardrail, which masks or blocks PII found by Microsoft
Presidio's analyzer."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import Presidio
from .params import PresidioParams

__all__ = ["Presidio", "PresidioParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("presidio", Presidio)
