"""``aporia``: Aporia Guardrails' ``/validate`` API.

``block`` refuses the call with Aporia's reply; ``modify`` and ``rephrase`` put Aporia's revision
in place of the prompt (``pre_call``) or the reply (``post_call``); ``passthrough`` lets it go on.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailParams, hookimpl
from gatehouse.guardrails.text import message_role_texts, reply_text
from pydantic import BaseModel, ConfigDict

from .params import AporiaParams
from .revise import revise_prompt, revise_reply

log = logging.getLogger("gatehouse.aporia")

PATH = "/validate"
# Aporia knows these roles; any other (tool, function, developer) is sent as "other".
ROLES = frozenset({"system", "user", "assistant"})
REVISING = frozenset({"modify", "rephrase"})


class Verdict(BaseModel):
    # Strict so an unexpected shape is a failed check, never a silent pass.
    model_config = ConfigDict(strict=True)

    action: Literal["modify", "passthrough", "block", "rephrase"]
    revised_prompt: str | None = None
    revised_response: str | None = None


class Aporia(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    vendor = "Aporia"
    Params = AporiaParams
    params: AporiaParams

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._url = self.params.api_base.rstrip("/") + PATH
        self._headers = {"X-APORIA-API-KEY": self.params.api_key.get_secret_value()}

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        verdict = await self._validate(call, extra_body, {"validation_target": "prompt"})
        if verdict.action in REVISING and verdict.revised_prompt is not None:
            self._applied(revise_prompt(call.body, verdict.revised_prompt), "prompt")

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        verdict = await self._validate(call, extra_body, {"validation_target": "prompt"})
        if verdict.action in REVISING:
            log.info("guardrail %r: Aporia revised the prompt, but during_call runs after it "
                     "was sent; use pre_call to apply revisions", self.name)

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any],
                        extra_body: dict[str, Any]) -> None:
        # "both": Aporia then applies the project's prompt policies as well as its response
        # policies to the exchange, as the reference proxy asks it to.
        verdict = await self._validate(call, extra_body, {
            "validation_target": "both", "response": reply_text(response)})
        if verdict.action in REVISING and verdict.revised_response is not None:
            self._applied(revise_reply(response, verdict.revised_response), "reply")

    async def _validate(self, call: Call, extra_body: dict[str, Any],
                        target: dict[str, str]) -> Verdict:
        messages = [{"role": role if role in ROLES else "other", "content": text}
                    for role, text in message_role_texts(call.body)]
        # extra_body goes first: a request may tune the check (success_threshold) but not
        # replace what is checked.
        raw, verdict = await self.post_checked(
            self._url, {**extra_body, "messages": messages, **target}, self._headers, Verdict)
        if verdict.action == "block":
            raise GuardrailBlocked("Violated guardrail policy",
                                   detail={"aporia_ai_response": raw})
        return verdict

    def _applied(self, done: bool, what: str) -> None:
        if done:
            log.info("guardrail %r: applied Aporia's revision of the %s", self.name, what)
        else:
            log.warning("guardrail %r: Aporia revised the %s, but it has no text to replace",
                        self.name, what)
