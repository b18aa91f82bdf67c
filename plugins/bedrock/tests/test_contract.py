"""The core's guardrail contract, run on ``bedrock`` against the fake Bedrock runtime."""

from __future__ import annotations

import gatehouse_bedrock
import pytest
from gatehouse.testing import GuardrailContract


class TestBedrockContract(GuardrailContract):
    plugin = gatehouse_bedrock
    guardrail_type = "bedrock"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "this is a forbidden request"
    blocked_reply = "a forbidden reply"
    rewritten_text = "reach me at bob@example.com please"

    @pytest.fixture
    def guardrail_params(self, signed_params):
        return {**signed_params, "mask_request_content": True, "mask_response_content": True}
