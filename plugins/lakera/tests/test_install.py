"""The installed distribution: its entry point is found by ``gatehouse check-config`` when
GATEHOUSE_LOAD_PLUGINS names it, and its types are unknown when it is not loaded.

Needs ``pip install -e plugins/lakera`` (as every test here does, to import the package)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from gatehouse.testing import check_config

CONFIG = """\
guardrails:
  - guardrail_name: lakera-guard
    litellm_params:
      guardrail: lakera
      mode: [pre_call, post_call]
      api_key: os.environ/LAKERA_KEY_FOR_TEST
  - guardrail_name: lakera-legacy
    litellm_params:
      guardrail: lakera_v1
      api_key: os.environ/LAKERA_KEY_FOR_TEST
      category_thresholds: {jailbreak: 0.9}
"""
ENV = {"LAKERA_KEY_FOR_TEST": "lk-x"}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def test_the_entry_point_is_this_source_tree():
    (ep,) = [ep for ep in entry_points(group="gatehouse") if ep.name == "lakera"]
    assert ep.dist is not None and ep.dist.name == "gatehouse-lakera"
    module = ep.load()
    assert Path(module.__file__).parent == Path(__file__).parents[1] / "src" / "gatehouse_lakera"


def test_check_config_accepts_the_types_when_the_plugin_loads(config_file):
    result = check_config(config_file, load="gatehouse-lakera", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_names_the_unknown_type_without_the_plugin(config_file):
    result = check_config(config_file, load="", env=ENV)
    assert result.returncode == 2
    assert "unknown guardrail type 'lakera'" in result.stderr
