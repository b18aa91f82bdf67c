"""The installed distribution, checked by the core's install contract on guardrails.yaml."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestLakeraInstall(InstallContract):
    distribution = "gatehouse-lakera"
    entry_points = {"lakera": "gatehouse_lakera"}
    configs = {"guardrails.yaml": "unknown guardrail type 'lakera'"}
    env = {"LAKERA_KEY_FOR_TEST": "lk-x"}
