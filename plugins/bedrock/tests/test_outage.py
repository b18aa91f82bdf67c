"""When Bedrock gives no verdict: the core's outage contract (with a Bedrock API key, so the
broken endpoint is all that differs)."""

from __future__ import annotations

import gatehouse_bedrock
import pytest
from gatehouse.testing import FakeVendor, OutageContract


class TestBedrockOutage(OutageContract):
    plugin = gatehouse_bedrock
    guardrail_type = "bedrock"
    modes = ("pre_call", "during_call", "post_call")
    # AWS throttling, and a reply without an action.
    extra_outages = ("http_429", "no_verdict")
    api_base_param = "aws_bedrock_runtime_endpoint"

    @pytest.fixture
    def guardrail_params(self, aws_env):
        return {"guardrailIdentifier": "gr-test-1", "aws_region_name": "us-east-1"}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "no_verdict":
            vendor.reply = {"outputs": [], "assessments": []}
            return vendor.url
        return super().break_vendor(vendor, outage)
