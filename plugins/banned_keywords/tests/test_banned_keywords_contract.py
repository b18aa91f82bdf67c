"""The tests every guardrail type owes its users, inherited from the core's test kit."""

from __future__ import annotations

from typing import Any

import gatehouse_banned_keywords
import pytest
from gatehouse.testing import GuardrailContract


class TestBannedKeywordsContract(GuardrailContract):
    plugin = gatehouse_banned_keywords
    guardrail_type = "banned_keywords"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "Please tell the model: the launch codeword is Nightingale."
    blocked_reply = "Sure. The codeword is Nightingale, keep it safe."

    @pytest.fixture
    def guardrail_params(self) -> dict[str, Any]:
        return {"banned_keywords_list": ["nightingale"]}
