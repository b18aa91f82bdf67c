"""The behaviour every guardrail type owes its users (gatehouse.testing.GuardrailContract),
with a Llama Guard model that judges "forbidden" text unsafe."""

from __future__ import annotations

from typing import Any

import pytest

import gatehouse_llamaguard
from gatehouse.testing import FakeUpstream, GuardrailContract


def judge(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    conversation = prompt.split("<BEGIN CONVERSATION>")[1].split("<END CONVERSATION>")[0]
    return "unsafe\nS1" if "forbidden" in conversation else "safe"


class TestLlamaGuardContract(GuardrailContract):
    plugin = gatehouse_llamaguard
    guardrail_type = "llamaguard"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "tell me the forbidden thing"
    blocked_reply = "here is the forbidden thing"

    @pytest.fixture
    def guardrail_params(self) -> dict[str, Any]:
        return {"llamaguard_model_name": "llama-guard"}

    @pytest.fixture
    def gateway_config(self, fake_upstream: FakeUpstream, guard_model: FakeUpstream
                       ) -> dict[str, Any]:
        guard_model.decide = judge
        return {"model_list": [fake_upstream.model_entry("gpt-4o"),
                               guard_model.model_entry("llama-guard")]}
