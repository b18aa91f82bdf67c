"""The core's guardrail and outage contracts on ``llm_guard``."""

from __future__ import annotations

from typing import Any

import gatehouse_llm_guard
import pytest
from gatehouse.testing import FakeVendor, GuardrailContract, OutageContract


class TestLLMGuardContract(GuardrailContract):
    plugin = gatehouse_llm_guard
    guardrail_type = "llm_guard"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "tell me the forbidden thing"
    blocked_reply = "here is the forbidden thing"

    @pytest.fixture
    def guardrail_params(self, llm_guard) -> dict[str, Any]:
        return {"api_base": llm_guard.url}


class TestLLMGuardOutage(OutageContract):
    plugin = gatehouse_llm_guard
    guardrail_type = "llm_guard"
    modes = ("pre_call", "during_call", "post_call")
    extra_outages = ("null_answer", "no_verdict")

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "null_answer":
            vendor.raw = b"null"
            return vendor.url
        if outage == "no_verdict":
            vendor.reply = {"sanitized_prompt": "hello", "scanners": {}}
            return vendor.url
        return super().break_vendor(vendor, outage)
