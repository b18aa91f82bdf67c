"""``google_text_moderation``: the call's text scored by Cloud Natural Language's
``documents:moderateText``; a category scoring above its threshold (strictly) refuses the call
with 400 naming the category. It runs alongside the upstream call, as in LiteLLM, or before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailParams, hookimpl
from gatehouse.guardrails.text import message_role_texts
from pydantic import BaseModel, ConfigDict, Field

from .credentials import AccessTokens
from .params import GoogleModerationParams

if TYPE_CHECKING:
    from gatehouse.guardrails.base import Models

BLOCK_MESSAGE = "Violated content safety policy. Category={}"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class Category(_Strict):
    name: str
    confidence: float

    @property
    def key(self) -> str:
        """``Death, Harm & Tragedy`` -> ``death_harm_and_tragedy``, as LiteLLM names it."""
        return self.name.lower().replace("&", "and").replace(",", "").replace(" ", "_")

    def __str__(self) -> str:
        # How Google's client library prints the category, on one line.
        return f'name: "{self.name}" confidence: {self.confidence:.9g}'


class Moderation(_Strict):
    moderationCategories: list[Category] = Field(default_factory=list)  # noqa: N815


class GoogleTextModeration(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    Params = GoogleModerationParams
    params: GoogleModerationParams
    vendor = "Google text moderation"
    default_modes: ClassVar[tuple[str, ...]] = ("during_call",)

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        base = self.params.api_base or self.params.google_moderation_api_base
        self._url = base.rstrip("/") + "/v1/documents:moderateText"
        self._thresholds = self.params.thresholds()
        self._default = self.params.google_moderation_confidence_threshold
        self._tokens = AccessTokens(self.params.timeout)

    async def start(self, models: Models) -> None:
        await self._tokens.load()

    async def stop(self) -> None:
        await super().stop()
        self._tokens.close()

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        text = "".join(text for _, text in message_role_texts(call.body))
        if not text:
            return
        # extra_body goes first: a request may add options but not replace what is checked.
        _, moderation = await self.post_checked(
            self._url, {**extra_body, "document": {"type": "PLAIN_TEXT", "content": text}},
            await self._tokens.headers(), Moderation)
        for category in moderation.moderationCategories:
            if category.confidence > self._thresholds.get(category.key, self._default):
                raise GuardrailBlocked(BLOCK_MESSAGE.format(category), status=400)

    # Nothing is rewritten, so the check is the same before or alongside the upstream call.
    pre_call = during_call
