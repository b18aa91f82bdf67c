"""Lakera Guard guardrails for Gatehouse.

* ``lakera`` -- the v2 guard API: blocks flagged calls, masks PII in place when PII is all that
  was found. Also accepted as ``lakera_v2`` and, in the ``callbacks:`` shorthand, as
  ``lakera_prompt_injection``.
* ``lakera_v1`` -- the legacy v1 prompt-injection API, with optional per-category thresholds.
"""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .v1 import LakeraV1
from .v2 import Lakera

__all__ = ["Lakera", "LakeraV1", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("lakera", Lakera, aliases=["lakera_v2", "lakera_prompt_injection"])
    register("lakera_v1", LakeraV1)
