"""A fake Guardrails AI server whose guard judges text the way a real guard would: text with
the word "forbidden" fails validation, e-mail addresses come back masked."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_guardrails_ai
import pytest
import pytest_asyncio

GUARD = "detect-secrets-guard"
EMAIL = re.compile(r"\S+@\S+\.\w+")


def judge(text: str) -> dict[str, Any]:
    """The server's reply to ``{"llmOutput": text}``."""
    passed = "forbidden" not in text
    return {"callId": "call-1", "rawLlmOutput": text,
            "validatedOutput": EMAIL.sub("<EMAIL>", text) if passed else None,
            "validationPassed": passed}




@pytest.fixture
def guard_name() -> str:
    return GUARD


@pytest_asyncio.fixture
async def guard(fake_vendor):
    fake = await fake_vendor()
    fake.decide = lambda path, body: judge(body["llmOutput"])
    return fake


@pytest.fixture
def guard_gateway(gateway, guard):
    """``await guard_gateway(mode=..., **params)``: a gateway whose guardrail ``gai`` (on for
    every call) asks the fake server's guard."""

    async def make(mode: Any = "pre_call", extra: dict[str, Any] | None = None, **params: Any):
        config = {**(extra or {}), "guardrails": [{
            "guardrail_name": "gai", "litellm_params": {
                "guardrail": "guardrails_ai", "guard_name": GUARD, "mode": mode,
                "api_base": guard.url, "default_on": True, **params}}]}
        return await gateway(config, plugins=[("guardrails_ai", gatehouse_guardrails_ai)])

    return make


@pytest.fixture
def inputs_guard(guard):
    """The guard behind the older ``inputs`` API: a 400 refuses, otherwise the corrected text
    comes back in ``outputs``."""

    def decide(path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = body["inputs"][0]["data"][0]
        guard.status = 400 if "forbidden" in text else 200
        if guard.status == 400:
            return {"error": "Validation failed for field with errors: forbidden"}
        return {"outputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                             "data": [EMAIL.sub("<EMAIL>", text)]}]}

    guard.decide = decide
    return guard
