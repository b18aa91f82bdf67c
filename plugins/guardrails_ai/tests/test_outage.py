"""When the Guardrails AI server gives no verdict: the core's outage contract."""

from __future__ import annotations

import gatehouse_guardrails_ai
import pytest
from gatehouse.testing import FakeVendor, OutageContract


class TestGuardrailsAIOutage(OutageContract):
    plugin = gatehouse_guardrails_ai
    guardrail_type = "guardrails_ai"
    modes = ("pre_call", "post_call")
    # A reply whose verdict is not a boolean is no verdict.
    extra_outages = ("no_verdict",)

    @pytest.fixture
    def guardrail_params(self, guard_name):
        return {"guard_name": guard_name}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_verdict":
            vendor.reply = {"callId": "c", "validationPassed": "no"}
            return vendor.url
        return super().break_vendor(vendor, outage)


class TestGuardrailsAIInputsOutage(TestGuardrailsAIOutage):
    extra_outages = ("no_outputs",)

    @pytest.fixture
    def guardrail_params(self, guard_name):
        return {"guard_name": guard_name, "guardrails_ai_api_input_format": "inputs"}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_outputs":
            vendor.reply = {"outputs": []}
            return vendor.url
        return super().break_vendor(vendor, outage)
