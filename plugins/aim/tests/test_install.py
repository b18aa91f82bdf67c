"""The installed distribution, checked by the core's install contract on the reference's
config block."""

from __future__ import annotations

from gatehouse.testing import InstallContract, check_config


class TestAimInstall(InstallContract):
    distribution = "gatehouse-aim"
    entry_points = {"aim": "gatehouse_aim"}
    configs = {"guardrails.yaml": "unknown guardrail type 'aim'"}
    env = {"AIM_API_KEY": "aim-x", "AIM_API_BASE": "https://aim.invalid"}

    def test_check_config_names_the_missing_key(self, installed, tmp_path, monkeypatch):
        monkeypatch.delenv("AIM_API_KEY", raising=False)
        config = tmp_path / "config.yaml"
        config.write_text("guardrails:\n  - guardrail_name: aim\n"
                          "    litellm_params: {guardrail: aim, mode: pre_call}\n")
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert "Couldn't get Aim api key, either set the `AIM_API_KEY`" in result.stderr
        assert "Traceback" not in result.stderr
