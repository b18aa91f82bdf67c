"""The installed distribution, checked by the core's install contract on the reference's
callbacks block and on a guardrails entry."""

from __future__ import annotations

from gatehouse.testing import InstallContract, check_config


class TestLLMGuardInstall(InstallContract):
    distribution = "gatehouse-llm-guard"
    entry_points = {"llm_guard": "gatehouse_llm_guard"}
    configs = {"callbacks.yaml": "unknown callback 'llmguard_moderations'",
               "guardrails.yaml": "unknown guardrail type 'llm_guard'"}
    env = {"LLM_GUARD_API_BASE": "http://0.0.0.0:8192"}

    def test_check_config_names_the_missing_base(self, installed, tmp_path, monkeypatch):
        monkeypatch.delenv("LLM_GUARD_API_BASE", raising=False)
        config = tmp_path / "config.yaml"
        config.write_text('litellm_settings:\n  callbacks: ["llmguard_moderations"]\n')
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert "Missing `LLM_GUARD_API_BASE` from environment" in result.stderr
        assert "Traceback" not in result.stderr
