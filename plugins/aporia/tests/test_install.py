"""The installed distribution, checked by the core's install contract on the reference's
quick-start config (quickstart.yaml, unchanged)."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestAporiaInstall(InstallContract):
    distribution = "gatehouse-aporia"
    entry_points = {"aporia": "gatehouse_aporia"}
    configs = {"quickstart.yaml": "unknown guardrail type 'aporia'"}
    env = {"OPENAI_API_KEY": "sk-x", "APORIA_API_KEY_1": "ap-1", "APORIA_API_KEY_2": "ap-2",
           "APORIA_API_BASE_1": "https://aporia-1.invalid",
           "APORIA_API_BASE_2": "https://aporia-2.invalid"}
