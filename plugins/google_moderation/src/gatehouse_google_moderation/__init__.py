"""Gatehouse plugin: ``google_text_moderation``, LiteLLM's callback that has Google Cloud
Natural Language's ``moderateText`` score each call's text and refuses a call when a category
scores above its threshold."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import GoogleTextModeration
from .params import GoogleModerationParams

__all__ = ["GoogleModerationParams", "GoogleTextModeration", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("google_text_moderation", GoogleTextModeration)
