"""gatehouse-secrets: the ``hide-secrets`` guardrail, which finds secrets with detect-secrets'
plugins and replaces each with ``[REDACTED]``."""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .guardrail import HideSecrets, HideSecretsParams
from .scanner import REDACTED, Scanner

__all__ = ["REDACTED", "HideSecrets", "HideSecretsParams", "Scanner", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("hide-secrets", HideSecrets, aliases=["hide_secrets"])
