"""``llm_guard``: the prompt (``/analyze/prompt``) or the prompt and its reply
(``/analyze/output``) posted to an LLM Guard API server; an answer that is not valid refuses
the call with 400. The sanitized text LLM Guard returns is not written back, as in LiteLLM.

``llm_guard_mode`` says for which calls it runs: ``all``; ``key-specific``, when the key's
``permissions`` set ``enable_llm_guard_check: true``; ``request-specific``, when the request's
``metadata.permissions`` does.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import orjson
from gatehouse import Call, Guardrail, GuardrailBlocked, GuardrailParams, hookimpl
from gatehouse.guardrails.text import message_role_texts, response_texts
from pydantic import BaseModel, ConfigDict

log = logging.getLogger("gatehouse.llm_guard")

BLOCK_MESSAGE = "Violated content safety policy"
MISSING_BASE = "Missing `LLM_GUARD_API_BASE` from environment"
SWITCH = "enable_llm_guard_check"


class LLMGuardParams(GuardrailParams):
    env_api_base = ("LLM_GUARD_API_BASE",)
    # LLM Guard is self-hosted, so there is no default.
    requires_api_base = True
    missing_api_base = MISSING_BASE

    # Never None once validated: from params, else from the environment.
    api_base: str
    # Named as in LiteLLM's settings so the ``callbacks:`` shorthand picks it up unchanged.
    llm_guard_mode: Literal["all", "key-specific", "request-specific"] = "all"


class Analysis(BaseModel):
    # Strict, and is_valid required: an answer without a verdict is a failed check, not a pass.
    model_config = ConfigDict(strict=True)

    is_valid: bool


class LLMGuard(Guardrail):
    #: Not cacheable: in its key-specific modes the verdict depends on the key's or the request's
    #: permissions, not only on the text.
    cacheable = False
    Params = LLMGuardParams
    params: LLMGuardParams
    vendor = "LLM Guard"
    # As in LiteLLM: the prompt is checked alongside the upstream call, and the reply too.
    default_modes: ClassVar[tuple[str, ...]] = ("during_call", "post_call")

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        base = self.params.api_base.rstrip("/")
        self._prompt_url = base + "/analyze/prompt"
        self._output_url = base + "/analyze/output"

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        prompt = _prompt(call.body)
        if prompt and self._enabled(call):
            await self._analyze(self._prompt_url, {**extra_body, "prompt": prompt})

    # Nothing is rewritten, so the check is the same before or alongside the upstream call.
    during_call = pre_call

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any],
                        extra_body: dict[str, Any]) -> None:
        output = "\n".join(text for text in response_texts(response) if text)
        if output and self._enabled(call):
            await self._analyze(self._output_url, {**extra_body, "prompt": _prompt(call.body),
                                                   "output": output})

    def _enabled(self, call: Call) -> bool:
        mode = self.params.llm_guard_mode
        if mode == "all":
            return True
        switches = call.principal.permissions if mode == "key-specific" \
            else call.metadata.get("permissions")
        return isinstance(switches, dict) and switches.get(SWITCH) is True

    async def _analyze(self, url: str, payload: dict[str, Any]) -> None:
        # extra_body goes first in payload: a request may add options, never replace the text.
        raw, analysis = await self.post_checked(url, payload, {}, Analysis)
        # LiteLLM's log line, less the sanitized text: that is the caller's content.
        log.info("LLM Guard: Received response - %s", orjson.dumps(
            {k: v for k, v in raw.items() if not k.startswith("sanitized_")}).decode())
        if not analysis.is_valid:
            raise GuardrailBlocked(BLOCK_MESSAGE, status=400)


def _prompt(body: dict[str, Any]) -> str:
    """Every message's text, one per line (a completion's prompt, an embedding's input)."""
    return "\n".join(text for _, text in message_role_texts(body) if text)
