"""A fake Aim Security that analyzes as the real one answers: "forbidden" text is blocked,
e-mail addresses in the caller's messages are anonymized as ``[EMAIL_n]``."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_aim
import pytest
import pytest_asyncio

API_KEY = "aim-test-secret-9090"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.\w+")


def clean() -> dict[str, Any]:
    return {"analysis_result": {"policy_drill_down": {}, "session_entities": []},
            "required_action": None}


def block(message: str = "Jailbreak attempt detected") -> dict[str, Any]:
    return {"analysis_result": {"policy_drill_down": {"Jailbreak": {"detected": True}},
                                "session_entities": []},
            "required_action": {"action_type": "block_action", "detection_message": message}}


def analyze(path: str, body: dict[str, Any]) -> dict[str, Any]:
    messages = body["messages"]
    if any("forbidden" in m["content"] for m in messages):
        return block()
    if messages[-1]["role"] == "assistant":
        return clean()
    entities: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        value = match.group()
        found = next((k for k, v in entities.items() if v == value), None)
        if found is None:
            found = f"EMAIL_{len(entities) + 1}"
            entities[found] = value
        return f"[{found}]"

    redacted = [{"role": m["role"], "content": EMAIL.sub(name, m["content"])} for m in messages]
    if not entities:
        return clean()
    return {"analysis_result": {
        "policy_drill_down": {"PII": {"detected": True}},
        "session_entities": [{"name": k, "content": v} for k, v in entities.items()]},
        "required_action": {"action_type": "anonymize_action",
                            "detection_message": "PII detected",
                            "chat_redaction_result": {"redacted_new_message": redacted[-1],
                                                      "all_redacted_messages": redacted}}}


@pytest_asyncio.fixture
async def aim(fake_vendor):
    """The core's FakeVendor as Aim, analyzing as :func:`analyze` until a test sets
    ``decide`` or ``reply``."""
    fake = await fake_vendor()
    fake.decide = analyze
    fake.api_key = API_KEY  # what the gateway is configured with
    return fake


@pytest.fixture
def aim_gateway(gateway, aim):
    """``await aim_gateway(mode=..., **params)``: a gateway with one ``aim`` guardrail
    ``aim-protected-app`` (on for every call) talking to the fake."""

    async def make(mode: Any = "pre_call", config: dict[str, Any] | None = None,
                   **params: Any):
        return await gateway({**(config or {}), "guardrails": [{
            "guardrail_name": "aim-protected-app", "litellm_params": {
                "guardrail": "aim", "mode": mode, "api_key": API_KEY, "api_base": aim.url,
                "default_on": True, **params}}]}, plugins=[("aim", gatehouse_aim)])

    return make

