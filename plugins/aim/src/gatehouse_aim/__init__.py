"""Gatehouse plugin: the ``aim`` guardrail, which asks Aim Security about each call and blocks,
only logs, or anonymizes it as Aim answers, restoring anonymized values in the reply."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import Aim, AimParams

__all__ = ["Aim", "AimParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("aim", Aim)
