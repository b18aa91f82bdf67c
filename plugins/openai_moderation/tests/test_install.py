"""The installed distribution, checked by the core's install contract on the reference's
config blocks (a guardrails entry, and the callbacks shorthand with its moderation model)."""

from __future__ import annotations

from gatehouse.testing import InstallContract, check_config


class TestOpenAIModerationInstall(InstallContract):
    distribution = "gatehouse-openai-moderation"
    entry_points = {"openai_moderation": "gatehouse_openai_moderation"}
    configs = {"guardrails.yaml": "unknown guardrail type 'openai_moderation'",
               "callbacks.yaml": "unknown callback 'openai_moderations'"}
    env = {"OPENAI_API_KEY": "sk-x"}

    def test_check_config_names_the_missing_key(self, installed, tmp_path, monkeypatch):
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        config = tmp_path / "config.yaml"
        config.write_text("guardrails:\n  - guardrail_name: mod\n"
                          "    litellm_params: {guardrail: openai_moderation}\n")
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert "OpenAI Moderation: api_key is required. Set OPENAI_API_KEY" in result.stderr
        assert "Traceback" not in result.stderr
