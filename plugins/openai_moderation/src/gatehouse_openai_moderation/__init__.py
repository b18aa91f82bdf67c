"""OpenAI moderation for Gatehouse.

* ``openai_moderation`` -- a guardrail that posts the caller's text, or the reply, to OpenAI's
  ``/moderations`` API and refuses flagged calls with 400.
* ``openai_moderations`` -- LiteLLM's callback: a moderation model from the gateway's own
  ``model_list`` (``openai_moderations_model_name``) checks every call alongside the upstream
  call, refusing flagged ones with 403.
"""

from __future__ import annotations

from collections.abc import Callable

from gatehouse import hookimpl

from .api import OpenAIModeration, OpenAIModerationParams
from .callback import ModerationsCallback, ModerationsCallbackParams

__all__ = ["ModerationsCallback", "ModerationsCallbackParams", "OpenAIModeration",
           "OpenAIModerationParams", "register_guardrails"]


@hookimpl
def register_guardrails(register: Callable[..., None]) -> None:
    register("openai_moderation", OpenAIModeration)
    register("openai_moderations", ModerationsCallback)
