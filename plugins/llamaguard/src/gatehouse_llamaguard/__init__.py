"""Gatehouse plugin: the ``llamaguard`` guardrail (``llamaguard_moderations`` in ``callbacks:``),
which asks a Llama Guard model from the gateway's ``model_list`` to judge conversations."""

from __future__ import annotations

from collections.abc import Callable

import gatehouse

from .guardrail import LlamaGuard, LlamaGuardParams

__all__ = ["LlamaGuard", "LlamaGuardParams"]


@gatehouse.hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("llamaguard", LlamaGuard, aliases=["llamaguard_moderations"])
