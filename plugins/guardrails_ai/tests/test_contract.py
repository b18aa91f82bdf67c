"""The core's guardrail contract, run on ``guardrails_ai`` against the fake server's guard."""

from __future__ import annotations

import gatehouse_guardrails_ai
import pytest
from gatehouse.testing import GuardrailContract


class TestGuardrailsAIContract(GuardrailContract):
    plugin = gatehouse_guardrails_ai
    guardrail_type = "guardrails_ai"
    modes = ("pre_call", "post_call", "logging_only")
    blocked_text = "this is a forbidden request"
    blocked_reply = "a forbidden reply"
    rewritten_text = "reach me at bob@example.com please"

    @pytest.fixture
    def guardrail_params(self, guard, guard_name):
        return {"guard_name": guard_name, "api_base": guard.url}
