"""The core's guardrail contract, run on both Lakera types with a fake Lakera that judges the
text it is sent the way the real one would: attacks flagged, e-mail addresses reported as PII
spans."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_lakera
import pytest
from gatehouse.testing import GuardrailContract

ATTACK = "forbidden"
EMAIL = re.compile(r"\S+@\S+\.\w+")


def judge_v2(path: str, body: dict[str, Any]) -> dict[str, Any]:
    payload, breakdown = [], []
    for i, message in enumerate(body["messages"]):
        payload += [{"start": m.start(), "end": m.end(), "text": m.group(),
                     "detector_type": "pii/email", "labels": [], "message_id": i}
                    for m in EMAIL.finditer(message["content"])]
        if ATTACK in message["content"]:
            breakdown.append({"detector_type": "prompt_attack", "detected": True,
                              "message_id": i})
    return {"flagged": bool(payload or breakdown), "payload": payload, "breakdown": breakdown}


def judge_v1(path: str, body: dict[str, Any]) -> dict[str, Any]:
    flagged = any(ATTACK in message["content"] for message in body["input"])
    return {"model": "lakera-guard-1", "results": [{
        "categories": {"prompt_injection": flagged, "jailbreak": False},
        "category_scores": {"prompt_injection": float(flagged), "jailbreak": 0.0},
        "flagged": flagged, "payload": {}}]}


class TestLakeraV2Contract(GuardrailContract):
    plugin = gatehouse_lakera
    guardrail_type = "lakera"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "this is a forbidden request"
    blocked_reply = "a forbidden reply"
    rewritten_text = "reach me at bob@example.com please"

    @pytest.fixture
    def guardrail_params(self, lakera):
        lakera.decide = judge_v2
        return {"api_key": lakera.api_key, "api_base": lakera.url}


class TestLakeraV1Contract(GuardrailContract):
    plugin = gatehouse_lakera
    guardrail_type = "lakera_v1"
    modes = ("pre_call", "during_call")
    blocked_text = "this is a forbidden request"

    @pytest.fixture
    def guardrail_params(self, lakera):
        lakera.decide = judge_v1
        return {"api_key": lakera.api_key, "api_base": lakera.url}
