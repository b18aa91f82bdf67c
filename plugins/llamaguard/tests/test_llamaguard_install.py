"""The installed distribution, as an operator meets it: ``gatehouse check-config``, by the
core's install contract, on the llamaguard type as a guardrails entry and as the callbacks
shorthand."""

from __future__ import annotations

from pathlib import Path

from gatehouse.testing import InstallContract, check_config


class TestLlamaGuardInstall(InstallContract):
    distribution = "gatehouse-llamaguard"
    entry_points = {"llamaguard": "gatehouse_llamaguard"}
    configs = {"guardrails.yaml": "unknown guardrail type 'llamaguard'",
               "callbacks.yaml": "unknown callback 'llamaguard_moderations'"}

    def test_missing_categories_file_fails_the_check(self, installed, tmp_path):
        config = tmp_path / "config.yaml"
        config.write_text(Path(__file__).with_name("callbacks.yaml").read_text()
                          + "  llamaguard_unsafe_content_categories: missing.txt\n")
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert "llamaguard_unsafe_content_categories" in result.stderr
        assert "missing.txt" in result.stderr
