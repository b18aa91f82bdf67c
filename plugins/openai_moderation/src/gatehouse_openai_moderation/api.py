"""``openai_moderation``: the caller's text (``pre_call``, ``during_call``) or the reply
(``post_call``) posted to OpenAI's ``/moderations`` API; a flagged one is refused with 400.
Content is never changed. On a stream the assembled reply is checked before any of it is
sent."""

from __future__ import annotations

import logging
from typing import Any

from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailParams, hookimpl
from pydantic import Field, SecretStr

from .texts import caller_text, reply_text
from .verdict import Moderation

log = logging.getLogger("gatehouse.openai_moderation")

MISSING_KEY = ("OpenAI Moderation: api_key is required. Set OPENAI_API_KEY environment "
               "variable or pass it in configuration.")
BLOCK_MESSAGE = "Violated OpenAI moderation policy"


class OpenAIModerationParams(GuardrailParams):
    env_api_key = ("OPENAI_API_KEY",)
    default_api_base = "https://api.openai.com/v1"
    requires_api_key = True
    missing_api_key = MISSING_KEY

    # Never None once validated: params, then the environment, then (for the base) the default.
    api_key: SecretStr
    api_base: str
    model: str = Field(default="omni-moderation-latest", min_length=1)


class OpenAIModeration(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    Params = OpenAIModerationParams
    params: OpenAIModerationParams
    vendor = "OpenAI moderation"

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._url = self.params.api_base.rstrip("/") + "/moderations"
        self._headers = {"Authorization": f"Bearer {self.api_key()}"}

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        await self._check(caller_text(call.body, "\n"), extra_body)

    # Nothing is rewritten, so the check is the same before or alongside the upstream call.
    during_call = pre_call

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any],
                        extra_body: dict[str, Any]) -> None:
        await self._check(reply_text(response), extra_body)

    async def _check(self, text: str, extra_body: dict[str, Any]) -> None:
        if not text.strip():
            return
        # extra_body goes first: a request may add options but not replace what is checked.
        _, moderation = await self.post_checked(
            self._url, {**extra_body, "model": self.params.model, "input": text},
            self._headers, Moderation)
        if moderation.flagged:
            found = moderation.violations()
            log.info("guardrail %r: OpenAI moderation flagged %s", self.name,
                     ", ".join(found["violated_categories"]) or "the text")
            raise GuardrailBlocked(BLOCK_MESSAGE, status=400,
                                   detail={"moderation_result": found})
