"""The distribution installed with pip: ``gatehouse check-config`` finds the banned_keywords type
through its entry point, and names it unknown when the plugin is not loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gatehouse.testing import check_config

PROJECT = Path(__file__).parents[1]

MODELS = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: mock/gpt-4o-mini
"""
GUARDRAILS = MODELS + """\
guardrails:
  - guardrail_name: no-codewords
    litellm_params:
      guardrail: banned_keywords
      mode: [pre_call, post_call]
      banned_keywords_list: keywords.txt
      match: substring
"""
SHORTHAND = MODELS + """\
litellm_settings:
  callbacks: ["banned_keywords"]
  banned_keywords_list: ["hello"]
"""


@pytest.fixture(scope="module")
def installed() -> None:
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(PROJECT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "keywords.txt").write_text("# codewords\nnightingale\n", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("config", [GUARDRAILS, SHORTHAND], ids=["guardrails", "callbacks"])
def test_check_config_accepts_it_when_the_plugin_loads(installed, tmp_path, config):
    result = check_config(write(tmp_path, config), load="gatehouse-banned-keywords")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(("config", "message"), [
    (GUARDRAILS, "unknown guardrail type 'banned_keywords'"),
    (SHORTHAND, "unknown callback 'banned_keywords'"),
], ids=["guardrails", "callbacks"])
def test_check_config_names_it_unknown_without_the_plugin(installed, tmp_path, config, message):
    result = check_config(write(tmp_path, config), load="")
    assert result.returncode == 2
    assert message in result.stderr


def test_check_config_names_a_missing_keyword_file(installed, tmp_path):
    config = write(tmp_path, GUARDRAILS)
    (tmp_path / "keywords.txt").unlink()
    result = check_config(config, load="gatehouse-banned-keywords")
    assert result.returncode == 2
    assert f"keyword file not found: {tmp_path / 'keywords.txt'}" in result.stderr
