"""Gatehouse: an OpenAI-compatible LLM gateway whose guardrails are pluggy plugins.

The names a plugin author needs are importable from here.
"""

from .guardrails.base import (Guardrail, GuardrailAnswered, GuardrailBlocked, GuardrailError,
                              GuardrailParams)
from .guardrails.call import Call, Principal, StreamState, Unsent
from .plugins import hookimpl

__all__ = [
    "Call",
    "Guardrail",
    "GuardrailAnswered",
    "GuardrailBlocked",
    "GuardrailError",
    "GuardrailParams",
    "Principal",
    "StreamState",
    "Unsent",
    "hookimpl",
]
