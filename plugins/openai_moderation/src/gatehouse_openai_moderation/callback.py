"""``openai_moderations``: LiteLLM's callback, a moderation model from the gateway's own
``model_list`` checking every call's messages alongside the upstream call; a flagged call is
refused with 403."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailError, GuardrailParams, hookimpl
from gatehouse.config import ConfigError
from gatehouse.guardrails.base import parse_reply
from gatehouse.proxy.providers import UpstreamError
from pydantic import Field

from .texts import all_message_text
from .verdict import Moderation

if TYPE_CHECKING:
    from gatehouse.guardrails.base import Models

BLOCK_MESSAGE = "Violated content safety policy"


class ModerationsCallbackParams(GuardrailParams):
    # Named as in LiteLLM's settings so the ``callbacks:`` shorthand picks it up unchanged.
    openai_moderations_model_name: str = Field(default="text-moderation-latest", min_length=1)


class ModerationsCallback(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    Params = ModerationsCallbackParams
    params: ModerationsCallbackParams
    vendor = "OpenAI moderation"
    # LiteLLM runs this check alongside the upstream call.
    default_modes: ClassVar[tuple[str, ...]] = ("during_call",)

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._model = self.params.openai_moderations_model_name
        self._source = f"OpenAI moderation model {self._model!r}"
        self._models: Models | None = None

    async def start(self, models: Models) -> None:
        # LiteLLM skips the check when it has no such model; a check that silently never runs
        # is a hole, so the start is refused instead.
        if self._model not in models.model_names:
            raise ConfigError(
                f"openai_moderations_model_name {self._model!r} is not a model_name in "
                f"model_list (models: {', '.join(models.model_names) or 'none'}); list the "
                f"moderation model in model_list and name it here")
        self._models = models

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        text = all_message_text(call.body)
        if not text:
            return
        assert self._models is not None  # the core starts every guardrail before its calls
        try:
            raw = await self._models.moderate(self._model, {**extra_body, "input": text},
                                              request_id=call.request_id)
        except UpstreamError as exc:
            raise GuardrailError(f"{self._source} failed: upstream answered {exc.status}",
                                 timeout=exc.status == 504) from None
        if parse_reply(raw, Moderation, self._source).flagged:
            raise GuardrailBlocked(BLOCK_MESSAGE, status=403)

    # Nothing is rewritten, so the check is the same before or alongside the upstream call.
    pre_call = during_call
