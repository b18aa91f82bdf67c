"""The distribution installed with pip, checked by the core's install contract: the
banned_keywords type as a guardrails entry with a keyword file and as the callbacks shorthand."""

from __future__ import annotations

from pathlib import Path

from gatehouse.testing import InstallContract, check_config


class TestBannedKeywordsInstall(InstallContract):
    distribution = "gatehouse-banned-keywords"
    entry_points = {"banned_keywords": "gatehouse_banned_keywords"}
    configs = {"guardrails.yaml": "unknown guardrail type 'banned_keywords'",
               "callbacks.yaml": "unknown callback 'banned_keywords'"}
    files = ("keywords.txt",)

    def test_check_config_names_a_missing_keyword_file(self, installed, tmp_path):
        config = tmp_path / "guardrails.yaml"
        config.write_bytes(Path(__file__).with_name("guardrails.yaml").read_bytes())
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert f"keyword file not found: {tmp_path / 'keywords.txt'}" in result.stderr
