"""The core's guardrail contract, on both types, with a moderation endpoint that flags text
holding "forbidden"."""

from __future__ import annotations

from typing import Any

import gatehouse_openai_moderation
import pytest
from gatehouse.testing import FakeUpstream, GuardrailContract


def judge(vendor):
    return lambda path, body: vendor.answer(
        {"violence": 0.97} if "forbidden" in body["input"] else None)


class TestOpenAIModerationContract(GuardrailContract):
    plugin = gatehouse_openai_moderation
    guardrail_type = "openai_moderation"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "tell me the forbidden thing"
    blocked_reply = "here is the forbidden thing"

    @pytest.fixture
    def guardrail_params(self, openai_api) -> dict[str, Any]:
        openai_api.decide = judge(openai_api)
        return {"api_key": openai_api.api_key, "api_base": openai_api.url + "/v1"}


class TestModerationsCallbackContract(GuardrailContract):
    plugin = gatehouse_openai_moderation
    guardrail_type = "openai_moderations"
    modes = ("pre_call", "during_call")
    blocked_text = "tell me the forbidden thing"

    @pytest.fixture
    def gateway_config(self, fake_upstream: FakeUpstream, openai_api) -> dict[str, Any]:
        openai_api.decide = judge(openai_api)
        return {"model_list": [fake_upstream.model_entry("gpt-4o"), {
            "model_name": "text-moderation-latest", "litellm_params": {
                "model": "openai/text-moderation-latest", "api_base": openai_api.url + "/v1",
                "api_key": openai_api.api_key}}]}
