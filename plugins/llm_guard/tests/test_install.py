"""The installed distribution, checked by the core's install contract on the reference's
callbacks block and on a guardrails entry."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestLLMGuardInstall(InstallContract):
    distribution = "gatehouse-llm-guard"
    entry_points = {"llm_guard": "gatehouse_llm_guard"}
    configs = {"callbacks.yaml": "unknown callback 'llmguard_moderations'",
               "guardrails.yaml": "unknown guardrail type 'llm_guard'"}
    env = {"LLM_GUARD_API_BASE": "http://0.0.0.0:8192"}
    refused = {'litellm_settings:\n  callbacks: ["llmguard_moderations"]\n':
               ("Missing `LLM_GUARD_API_BASE` from environment", {"LLM_GUARD_API_BASE": None})}
