"""The core's guardrail contract, run on ``presidio`` against the fake Presidio."""

from __future__ import annotations

import gatehouse_presidio
import pytest
from gatehouse.testing import GuardrailContract


class TestPresidioContract(GuardrailContract):
    plugin = gatehouse_presidio
    guardrail_type = "presidio"
    modes = ("pre_call", "during_call", "post_call", "logging_only")
    blocked_text = "charge my card 4111 1111 1111 1111 please"
    blocked_reply = "Your card number is 4111-1111-1111-1111."
    rewritten_text = "reach me at jane.doe@example.com please"
    rewritten_reply = "Sure: write to jane.doe@example.com, she answers within the day."

    @pytest.fixture
    def guardrail_params(self, presidio_params):
        return {**presidio_params,
                "pii_entities_config": {"CREDIT_CARD": "BLOCK", "EMAIL_ADDRESS": "MASK"}}
