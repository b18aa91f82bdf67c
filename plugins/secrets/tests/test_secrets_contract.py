"""The tests every guardrail type owes its users, inherited from the core's test kit."""

from __future__ import annotations

import gatehouse_secrets
from gatehouse.testing import GuardrailContract


class TestHideSecretsContract(GuardrailContract):
    plugin = gatehouse_secrets
    guardrail_type = "hide-secrets"
    modes = ("pre_call", "post_call", "logging_only")
    rewritten_text = "My AWS key id is AKIAIOSFODNN7EXAMPLE, is that fine?"
    rewritten_reply = "Your AWS key id is AKIAIOSFODNN7EXAMPLE; keep it safe and rotate it."
