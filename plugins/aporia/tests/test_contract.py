"""The core's guardrail contract, run on ``aporia`` with a fake Aporia that judges the text it
is sent: blocks what is forbidden, rewrites e-mail addresses in the prompt."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_aporia
import pytest
from gatehouse.testing import GuardrailContract

EMAIL = re.compile(r"\S+@\S+\.\w+")


def judge(path: str, body: dict[str, Any]) -> dict[str, Any]:
    # Both targets the plugin sends ("prompt", "both") have Aporia check the conversation.
    checked = " ".join([*(m["content"] for m in body["messages"]), body.get("response", "")])
    verdict = {"action": "passthrough", "revised_prompt": None, "revised_response": None,
               "explain_log": None}
    if "forbidden" in checked:
        return {**verdict, "action": "block"}
    if EMAIL.search(checked):
        return {**verdict, "action": "modify",
                "revised_prompt": EMAIL.sub("<EMAIL>", body["messages"][-1]["content"])}
    return verdict


class TestAporiaContract(GuardrailContract):
    plugin = gatehouse_aporia
    guardrail_type = "aporia"
    modes = ("pre_call", "during_call", "post_call")
    blocked_text = "this is a forbidden request"
    blocked_reply = "a forbidden reply"
    rewritten_text = "reach me at bob@example.com please"

    @pytest.fixture
    def guardrail_params(self, aporia):
        aporia.decide = judge
        return {"api_key": aporia.api_key, "api_base": aporia.url}
