"""``aim``: each call analyzed by Aim Security (``POST {api_base}/fw/v1/analyze``), which
answers with the action to take:

* none, ``monitor_action`` or ``engage_action`` -- the call goes on (the last two are logged);
* ``block_action`` -- refused with 400 and Aim's ``detection_message``;
* ``anonymize_action`` (``pre_call``) -- the messages are replaced by Aim's redacted ones, and
  the values it anonymized (``[EMAIL_1]``) are put back into the reply.

The reply (``post_call``) is sent with the conversation for Aim's output policies; on a stream
nothing is sent until the whole reply has passed, so an anonymized value split across chunks
is restored before any of it reaches the client.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from gatehouse import (Call, Guardrail, GuardrailBlocked, GuardrailError, GuardrailParams,
                       hookimpl)
from gatehouse.guardrails.text import response_texts
from pydantic import SecretStr

from .answer import Analysis
from .turns import Turn, apply_redaction, request_turns, restore

log = logging.getLogger("gatehouse.aim")

MISSING_KEY = ("Couldn't get Aim api key, either set the `AIM_API_KEY` in the environment or "
               "pass it as a parameter to the guardrail in the config file")
# Said when Aim blocks without a detection message of its own.
DEFAULT_BLOCK = "Blocked by Aim"
LOGGED = frozenset({"monitor_action", "engage_action"})
Hook = Literal["pre_call", "moderation", "output"]

try:
    GATEWAY_VERSION = version("gatehouse-proxy")
except PackageNotFoundError:  # run from a source tree without install metadata
    GATEWAY_VERSION = "unknown"


class AimParams(GuardrailParams):
    env_api_key = ("AIM_API_KEY",)
    env_api_base = ("AIM_API_BASE",)
    default_api_base = "https://api.aim.security"
    requires_api_key = True
    missing_api_key = MISSING_KEY

    # Never None once validated: params, then the environment, then (for the base) the default.
    api_key: SecretStr
    api_base: str


class Aim(Guardrail):
    #: Not cacheable: its verdict also depends on the caller's x-aim-user-email header, and a
    #: mask it makes is undone in the reply from per-call state.
    cacheable = False
    Params = AimParams
    params: AimParams
    vendor = "Aim"

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._url = self.params.api_base.rstrip("/") + "/fw/v1/analyze"
        self._auth = f"Bearer {self.api_key()}"

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        turns = request_turns(call.body)
        analysis = await self._analyze(call, "pre_call", turns, extra_body)
        if analysis.action != "anonymize_action":
            return
        redaction = analysis.required_action and analysis.required_action.chat_redaction_result
        if redaction is None:
            log.warning("guardrail %r: Aim asked to anonymize without a redaction", self.name)
            return
        changed = apply_redaction(turns, redaction)
        # Kept for this call's reply alone: another call's values must never leak into it.
        call.scratch[self.name] = analysis.analysis_result.session_entities
        log.info("guardrail %r: Aim anonymized %d message(s)", self.name, changed)

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        analysis = await self._analyze(call, "moderation", request_turns(call.body), extra_body)
        if analysis.action == "anonymize_action":
            log.warning("guardrail %r: Aim asked to anonymize, but during_call runs once the "
                        "request is sent; use pre_call to anonymize", self.name)

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any],
                        extra_body: dict[str, Any]) -> None:
        reply = "\n".join(text for text in response_texts(response) if text)
        if reply:
            # Aim sees the reply as it was written, placeholders and all.
            await self._analyze(call, "output", request_turns(call.body), extra_body,
                                reply={"role": "assistant", "content": reply})
        restored = restore(response, call.scratch.get(self.name, ()))
        if restored:
            log.info("guardrail %r: restored Aim's anonymized values in %d reply text(s)",
                     self.name, restored)

    async def _analyze(self, call: Call, hook: Hook, turns: list[Turn],
                       extra_body: dict[str, Any], *,
                       reply: dict[str, str] | None = None) -> Analysis:
        messages = [turn.as_message() for turn in turns]
        if reply is not None:
            messages.append(reply)
        if not messages:
            return Analysis()
        # extra_body goes first: a request may add options but not replace what is checked.
        _, analysis = await self.post_checked(self._url, {**extra_body, "messages": messages},
                                              self._headers(call, hook), Analysis)
        action = analysis.action
        if action == "block_action":
            assert analysis.required_action is not None
            log.info("guardrail %r: Aim blocked the call (policies: %s)", self.name,
                     analysis.policies)
            raise GuardrailBlocked(analysis.required_action.detection_message or DEFAULT_BLOCK,
                                   status=400)
        if action in LOGGED:
            log.info("guardrail %r: Aim %s (policies: %s)", self.name, action.replace("_", " "),
                     analysis.policies)
        elif action not in (None, "anonymize_action"):
            raise GuardrailError(f"Aim asked for an unknown action {action!r}")
        return analysis

    def _headers(self, call: Call, hook: Hook) -> dict[str, str]:
        headers = {"Authorization": self._auth, "x-aim-litellm-hook": hook,
                   "x-aim-litellm-version": GATEWAY_VERSION, "x-aim-call-id": call.request_id}
        email = call.headers.get("x-aim-user-email")
        if email:
            headers["x-aim-user-email"] = email
        if call.principal.key_alias:
            headers["x-aim-gateway-key-alias"] = call.principal.key_alias
        return headers

