"""The installed distribution, checked by the core's install contract on the reference's
config block."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestPresidioInstall(InstallContract):
    distribution = "gatehouse-presidio"
    entry_points = {"presidio": "gatehouse_presidio"}
    configs = {"guardrails.yaml": "unknown guardrail type 'presidio'"}
    files = ("recognizers.json",)
