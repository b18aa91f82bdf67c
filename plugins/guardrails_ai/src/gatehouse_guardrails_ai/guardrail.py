"""``guardrails_ai``: asks a Guardrails AI server's guard to validate the caller's latest turn
(``pre_call``), the reply (``post_call``), or what is logged (``logging_only``).

A guard that fails validation refuses the call; one that passes may hand back corrected text
(``validatedOutput``), which replaces the caller's turn before it goes upstream, or the logged
text. Replies are checked, never changed, as the server's other clients expect.
"""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.parse import quote

from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailError, GuardrailParams, hookimpl
from gatehouse.guardrails.text import (Group, joined, last_user_group, replace_group,
                                       response_groups)
from pydantic import BaseModel, ConfigDict, model_validator
from yarl import URL

log = logging.getLogger("gatehouse.guardrails_ai")

BLOCK_MESSAGE = "Violated guardrail policy"
DETAIL_KEY = "guardrails_ai_response"
# What a logged text the guard rejected is stored as: the text itself must not be.
REJECTED_IN_LOG = "[withheld: failed the Guardrails AI guard]"


class GuardrailsAIParams(GuardrailParams):
    env_api_base = ("GUARDRAILS_AI_API_BASE",)
    default_api_base = "http://0.0.0.0:8000"

    guard_name: str
    # ``llmOutput`` is the server's validate API; ``inputs`` the older inference-style body.
    guardrails_ai_api_input_format: Literal["llmOutput", "inputs"] = "llmOutput"
    api_base: str

    @model_validator(mode="before")
    @classmethod
    def _guard_named(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("guard_name"):
            raise ValueError("GuardrailsAIException - Please pass the Guardrails AI guard name "
                             "via 'litellm_params::guard_name'")
        return data


class _Reply(BaseModel):
    # Strict: "validationPassed": "false" is a reply we cannot read, not a pass.
    model_config = ConfigDict(strict=True)


class Validation(_Reply):
    validationPassed: bool
    validatedOutput: str | None = None
    rawLlmOutput: str | None = None


class _Tensor(_Reply):
    data: list[str]


class Inference(_Reply):
    outputs: list[_Tensor]


class GuardrailsAI(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    vendor = "Guardrails AI"
    Params = GuardrailsAIParams
    params: GuardrailsAIParams

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        # Joined as a URL reference, as the server's other clients join it: an api_base whose
        # path does not end in "/" loses its last segment.
        base = URL(self.params.api_base)
        self._url = str(base.join(URL(f"guards/{quote(self.params.guard_name, safe='')}"
                                      f"/validate")))
        if base.path not in ("", "/") and not base.path.endswith("/"):
            log.warning("guardrail %r: api_base %s has no trailing '/', so its last path "
                        "segment is replaced: the guard is called at %s", name,
                        self.params.api_base, self._url)
        self._inputs = self.params.guardrails_ai_api_input_format == "inputs"

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        turn = last_user_group(call.body)
        if turn:
            _replace(turn, await self._validated(joined(turn), extra_body))

    @hookimpl
    async def post_call(self, response: dict[str, Any], extra_body: dict[str, Any]) -> None:
        for group in response_groups(response):
            text = joined(group)
            if text:
                await self._validated(text, extra_body)

    @hookimpl
    async def logging_only(self, record: dict[str, Any]) -> None:
        groups = [last_user_group(record.get("request") or {}),
                  *response_groups(record.get("response") or {})]
        for group in filter(None, groups):
            try:
                corrected = await self._validated(joined(group), {})
            except GuardrailBlocked:
                corrected = REJECTED_IN_LOG
            _replace(group, corrected)

    async def _validated(self, text: str, extra_body: dict[str, Any]) -> str | None:
        """The guard's corrected text (None: keep it as it is); GuardrailBlocked when the text
        fails the guard."""
        # extra_body adds to the vendor call but never replaces the text under judgement.
        if self._inputs:
            tensor = {"name": "text", "shape": [1], "data": [text], "datatype": "BYTES"}
            status, raw = await self.post_json_status(
                self._url, {**extra_body, "inputs": [tensor]}, answers=(400,))
            if status == 400:
                raise GuardrailBlocked(BLOCK_MESSAGE, detail={DETAIL_KEY: raw})
            outputs = self.read_reply(self._url, raw, Inference).outputs
            if not outputs or not outputs[0].data:
                raise GuardrailError(f"{self.where(self._url)} answered without outputs")
            return outputs[0].data[0]
        raw, verdict = await self.post_checked(self._url, {**extra_body, "llmOutput": text}, {},
                                               Validation)
        if not verdict.validationPassed:
            raise GuardrailBlocked(BLOCK_MESSAGE, detail={DETAIL_KEY: raw})
        return verdict.validatedOutput or verdict.rawLlmOutput


def _replace(group: Group, corrected: str | None) -> None:
    if corrected is not None and corrected != joined(group):
        replace_group(group, corrected)
