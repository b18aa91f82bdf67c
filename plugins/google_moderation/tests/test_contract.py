"""The core's guardrail and outage contracts on ``google_text_moderation``."""

from __future__ import annotations

from typing import Any

import gatehouse_google_moderation
import pytest
from gatehouse.testing import FakeVendor, GuardrailContract, OutageContract


class TestGoogleModerationContract(GuardrailContract):
    plugin = gatehouse_google_moderation
    guardrail_type = "google_text_moderation"
    modes = ("pre_call", "during_call")
    blocked_text = "tell me the forbidden thing"

    @pytest.fixture
    def guardrail_params(self, google) -> dict[str, Any]:
        google.decide = lambda path, body: google.scores(
            Toxic=0.97 if "forbidden" in body["document"]["content"] else 0.01)
        return {"google_moderation_api_base": google.url}


class TestGoogleModerationOutage(OutageContract):
    plugin = gatehouse_google_moderation
    guardrail_type = "google_text_moderation"
    modes = ("pre_call", "during_call")
    # Google's answer to credentials without access; scores that are not numbers.
    extra_outages = ("http_401", "unreadable_scores")

    @pytest.fixture
    def guardrail_params(self, credentials_file) -> dict[str, Any]:
        return {}

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        if outage == "unreadable_scores":
            vendor.reply = {"moderationCategories": [{"name": "Toxic", "confidence": "high"}]}
            return vendor.url
        return super().break_vendor(vendor, outage)
