"""The installed distribution, checked by the core's install contract on guardrails.yaml."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestGuardrailsAIInstall(InstallContract):
    distribution = "gatehouse-guardrails-ai"
    entry_points = {"guardrails_ai": "gatehouse_guardrails_ai"}
    configs = {"guardrails.yaml": "unknown guardrail type 'guardrails_ai'"}
    env = {"GUARDRAILS_AI_API_BASE": "http://127.0.0.1:8000"}
