"""The installed distribution, as an operator meets it: ``gatehouse check-config``.

Needs ``pip install -e plugins/llamaguard`` (as every test here does, to import the plugin).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gatehouse.testing import check_config

CONFIGS = {
    "guardrails": {"guardrails": [{"guardrail_name": "content-safety", "litellm_params": {
        "guardrail": "llamaguard", "mode": "pre_call", "llamaguard_model_name": "llama-guard"}}]},
    "callbacks": {"litellm_settings": {"callbacks": ["llamaguard_moderations"],
                                       "llamaguard_model_name": "llama-guard"}},
}
MODELS = [{"model_name": "llama-guard", "litellm_params": {
    "model": "openai/llama-guard", "api_base": "http://127.0.0.1:9/v1"}}]


def write(tmp_path: Path, config: dict) -> Path:
    """``config`` with the Llama Guard model added, as a config.yaml."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": MODELS, **config}))
    return path


@pytest.mark.parametrize("form", CONFIGS)
def test_installed_plugin_provides_the_type(tmp_path, form):
    result = check_config(write(tmp_path, CONFIGS[form]), load="gatehouse-llamaguard")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(("form", "complaint"), [
    ("guardrails", "unknown guardrail type 'llamaguard'"),
    ("callbacks", "unknown callback 'llamaguard_moderations'"),
])
def test_without_the_plugin_the_type_is_unknown(tmp_path, form, complaint):
    result = check_config(write(tmp_path, CONFIGS[form]), load="")
    assert result.returncode == 2
    assert complaint in result.stderr


def test_missing_categories_file_fails_the_check(tmp_path):
    config = {"litellm_settings": {**CONFIGS["callbacks"]["litellm_settings"],
                                   "llamaguard_unsafe_content_categories": "missing.txt"}}
    result = check_config(write(tmp_path, config), load="gatehouse-llamaguard")
    assert result.returncode == 2
    assert "llamaguard_unsafe_content_categories" in result.stderr
    assert "missing.txt" in result.stderr
