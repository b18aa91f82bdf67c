"""The installed distribution: its entry point is found by ``gatehouse check-config`` when
GATEHOUSE_LOAD_PLUGINS names it, and its types are unknown when it is not loaded.

Needs ``pip install -e plugins/aporia`` (as every test here does, to import the package)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from gatehouse.testing import check_config

# The reference's quick-start config, unchanged.
CONFIG = """\
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
      api_key: os.environ/OPENAI_API_KEY
guardrails:
  - guardrail_name: "aporia-pre-guard"
    litellm_params:
      guardrail: aporia  # supported values: "aporia", "lakera"
      mode: "during_call"
      api_key: os.environ/APORIA_API_KEY_1
      api_base: os.environ/APORIA_API_BASE_1
  - guardrail_name: "aporia-post-guard"
    litellm_params:
      guardrail: aporia  # supported values: "aporia", "lakera"
      mode: "post_call"
      api_key: os.environ/APORIA_API_KEY_2
      api_base: os.environ/APORIA_API_BASE_2
    guardrail_info:
      params:
        - name: "toxicity_score"
          type: "float"
          description: "Score between 0-1 indicating content toxicity level"
        - name: "pii_detection"
          type: "boolean"
"""
ENV = {"OPENAI_API_KEY": "sk-x", "APORIA_API_KEY_1": "ap-1", "APORIA_API_KEY_2": "ap-2",
       "APORIA_API_BASE_1": "https://aporia-1.invalid",
       "APORIA_API_BASE_2": "https://aporia-2.invalid"}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_the_entry_point_is_this_source_tree():
    (ep,) = [ep for ep in entry_points(group="gatehouse") if ep.name == "aporia"]
    assert ep.dist is not None and ep.dist.name == "gatehouse-aporia"
    module = ep.load()
    assert Path(module.__file__).parent == Path(__file__).parents[1] / "src" / "gatehouse_aporia"


def test_check_config_accepts_the_types_when_the_plugin_loads(config_file):
    result = check_config(config_file, load="gatehouse-aporia", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_names_the_unknown_type_without_the_plugin(config_file):
    result = check_config(config_file, load="", env=ENV)
    assert result.returncode == 2
    assert "unknown guardrail type 'aporia'" in result.stderr
