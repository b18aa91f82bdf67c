"""The ``llamaguard`` guardrail: asks a Llama Guard model from the gateway's own ``model_list``
whether the caller's turn, or the model's reply, is unsafe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import Field, ValidationInfo, field_validator

import gatehouse
from gatehouse.config import ConfigError
from gatehouse.guardrails.text import reply_text
from gatehouse.proxy.providers import UpstreamError

from .categories import LLAMA_GUARD_3, Categories, load_categories
from .prompt import PromptBuilder, Speaker, Turn, reply_turn, request_turns
from .verdict import MalformedVerdict, parse_verdict

if TYPE_CHECKING:
    from gatehouse.guardrails.base import Models

BLOCK_MESSAGE = "Violated content safety policy"


class LlamaGuardParams(gatehouse.GuardrailParams):
    # Named as in LiteLLM's settings so the ``callbacks:`` shorthand picks them up unchanged.
    llamaguard_model_name: str = Field(min_length=1)
    llamaguard_unsafe_content_categories: Categories = LLAMA_GUARD_3

    @field_validator("llamaguard_unsafe_content_categories", mode="plain")
    @classmethod
    def _read_categories(cls, value: Any, info: ValidationInfo) -> Categories:
        return load_categories(value, (info.context or {}).get("base_dir"))


class LlamaGuard(gatehouse.Guardrail):
    """Judges the caller's turn before or during the upstream call, and the reply after it."""

    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    #: Each check calls the Llama Guard deployment: ``gatehouse replay --rate`` paces it.
    vendor = "Llama Guard"

    Params = LlamaGuardParams
    # LiteLLM runs its Llama Guard check alongside the upstream call; the shorthand does too.
    default_modes: ClassVar[tuple[str, ...]] = ("during_call",)

    def __init__(self, name: str, params: gatehouse.GuardrailParams) -> None:
        super().__init__(name, params)
        assert isinstance(params, LlamaGuardParams)  # the core validates with cls.Params
        self._model = params.llamaguard_model_name
        self._categories = params.llamaguard_unsafe_content_categories
        self._prompts = PromptBuilder(self._categories)
        self._models: Models | None = None

    async def start(self, models: Models) -> None:
        if self._model not in models.model_names:
            raise ConfigError(
                f"llamaguard_model_name {self._model!r} is not a model_name in model_list "
                f"(models: {', '.join(models.model_names) or 'none'}); list the Llama Guard "
                f"deployment in model_list and name it here")
        self._models = models

    @gatehouse.hookimpl
    async def pre_call(self, call: gatehouse.Call) -> None:
        await self._judge(call, "User", request_turns(call.body))

    @gatehouse.hookimpl
    async def during_call(self, call: gatehouse.Call) -> None:
        await self._judge(call, "User", request_turns(call.body))

    @gatehouse.hookimpl
    async def post_call(self, call: gatehouse.Call, response: dict[str, Any]) -> None:
        reply = reply_turn(response)
        if reply:
            await self._judge(call, "Agent", request_turns(call.body) + reply)

    async def _judge(self, call: gatehouse.Call, judged: Speaker, turns: list[Turn]) -> None:
        if not turns:
            return
        answer = await self._ask(self._prompts.build(judged, turns), call.request_id)
        try:
            codes = parse_verdict(answer, self._categories)
        except MalformedVerdict as exc:
            raise gatehouse.GuardrailError(
                f"Llama Guard model {self._model!r} gave an unusable answer: {exc}") from None
        if codes:
            raise gatehouse.GuardrailBlocked(BLOCK_MESSAGE, status=400, detail={
                "llamaguard_response": {
                    "categories": list(codes),
                    "category_names": [self._categories.names[code] for code in codes],
                }})

    async def _ask(self, prompt: str, request_id: str) -> str:
        assert self._models is not None  # the core starts every guardrail before its calls
        body = {"messages": [{"role": "user", "content": prompt}], "temperature": 0}
        try:
            response = await self._models.complete(self._model, body, request_id=request_id)
        except UpstreamError as exc:
            raise gatehouse.GuardrailError(
                f"Llama Guard model {self._model!r} failed: upstream answered {exc.status}",
                timeout=exc.status == 504) from None
        except orjson.JSONDecodeError:
            raise gatehouse.GuardrailError(
                f"Llama Guard model {self._model!r} answered with malformed JSON") from None
        return reply_text(response)
