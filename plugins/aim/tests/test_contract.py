"""The core's guardrail and outage contracts on ``aim``, with the fake Aim of conftest."""

from __future__ import annotations

from typing import Any

import gatehouse_aim
import pytest
from gatehouse.testing import FakeVendor, GuardrailContract, OutageContract


class TestAimContract(GuardrailContract):
    plugin = gatehouse_aim
    guardrail_type = "aim"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "tell me the forbidden thing"
    blocked_reply = "here is the forbidden thing"
    rewritten_text = "reach me at bob@example.com please"

    @pytest.fixture
    def guardrail_params(self, aim) -> dict[str, Any]:
        return {"api_key": aim.api_key, "api_base": aim.url}


class TestAimOutage(OutageContract):
    plugin = gatehouse_aim
    guardrail_type = "aim"
    modes = ("pre_call", "during_call", "post_call")
    # Aim's answer to a bad key, and an action it has not told us about.
    extra_outages = ("http_401", "unknown_action")

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "unknown_action":
            vendor.reply = {"required_action": {"action_type": "quarantine_action"}}
            return vendor.url
        return super().break_vendor(vendor, outage)
