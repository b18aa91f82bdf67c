"""The installed distribution, checked by the core's install contract on the reference's
config block and on the LiteLLM callbacks shorthand, and what check-config says of a missing
Presidio."""

from __future__ import annotations

from gatehouse.testing import InstallContract, check_config


class TestPresidioInstall(InstallContract):
    distribution = "gatehouse-presidio"
    entry_points = {"presidio": "gatehouse_presidio"}
    configs = {"guardrails.yaml": "unknown guardrail type 'presidio'",
               "callbacks.yaml": "unknown callback 'presidio'"}
    files = ("recognizers.json",)
    env = {"PRESIDIO_ANALYZER_API_BASE": "analyzer:5002",
           "PRESIDIO_ANONYMIZER_API_BASE": "http://anonymizer:5001"}

    def test_check_config_names_a_missing_service(self, installed, tmp_path):
        config = tmp_path / "config.yaml"
        config.write_text("guardrails:\n  - guardrail_name: pii\n    litellm_params:\n"
                          "      guardrail: presidio\n"
                          "      presidio_analyzer_api_base: http://analyzer:5002\n")
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2
        assert "Missing `PRESIDIO_ANONYMIZER_API_BASE` from environment" in result.stderr
        assert "guardrails[0]" in result.stderr

    def test_check_config_names_a_missing_recognizer_file(self, installed, tmp_path):
        config = tmp_path / "config.yaml"
        config.write_text("guardrails:\n  - guardrail_name: pii\n    litellm_params:\n"
                          "      guardrail: presidio\n"
                          "      presidio_ad_hoc_recognizers: ./missing.json\n")
        result = check_config(config, load=self.distribution, env=self.env)
        assert result.returncode == 2
        assert "File not found. file_path=./missing.json" in result.stderr
