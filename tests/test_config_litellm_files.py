"""LiteLLM config files as their users have them: what gatehouse does not implement loads with
one warning each naming what is ignored -- at start and from ``gatehouse check-config`` -- unless
ignoring it would weaken the gateway, which stops the start saying so."""

import subprocess
import sys

import pytest
import yaml

from doubles import PLUGINS
from gatehouse.app import GATEWAY, create_app
from gatehouse.config import ConfigError, config_from_dict

LITELLM_FILE = """
model_list:
  - model_name: gpt-4o
    litellm_params: {model: gpt-4o, api_key: sk-upstream-secret}
router_settings:
  routing_strategy: usage-based-routing-v2
  num_retries: 3
  model_group_alias: {gpt-4: gpt-4o}
finetune_settings:
  - custom_llm_provider: azure
files_settings:
  - custom_llm_provider: openai
callbacks: [langfuse]
litellm_settings:
  callbacks: [datadog]
  drop_params: true
"""
IGNORED = [
    "router_settings.routing_strategy: gatehouse does not implement LiteLLM's routing_strategy; "
    "ignored",
    "router_settings.num_retries: gatehouse does not implement LiteLLM's num_retries; ignored",
    "finetune_settings: gatehouse does not implement LiteLLM's finetune_settings; ignored",
    "files_settings: gatehouse does not implement LiteLLM's files_settings; ignored",
    "callbacks[0]: gatehouse does not implement LiteLLM's 'langfuse' callback; ignored",
    "litellm_settings.callbacks[0]: gatehouse does not implement LiteLLM's 'datadog' callback; "
    "ignored",
    "litellm_settings.drop_params: gatehouse does not implement LiteLLM's drop_params; ignored",
]


def test_unimplemented_sections_load_with_one_warning_each(tmp_path, caplog):
    app = create_app(config_from_dict(yaml.safe_load(LITELLM_FILE), source="config.yaml"),
                     extra_plugins=PLUGINS, load=(), source="config.yaml")
    gateway = app[GATEWAY]
    assert gateway.router.model_names == ("gpt-4o",)
    assert gateway.router.routes.aliases == {"gpt-4": "gpt-4o"}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for line in IGNORED:
        assert warned.count(f"config.yaml: {line}") == 1, line
    assert "sk-upstream-secret" not in caplog.text


def test_check_config_prints_the_same_warnings(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(LITELLM_FILE)
    result = subprocess.run([sys.executable, "-m", "gatehouse", "check-config", "-c", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for line in IGNORED:
        assert f"{path}: {line}" in result.stderr


@pytest.mark.parametrize("config,needle", [
    # Another file's guardrails would silently not run.
    ({"include": ["more.yaml"]}, "include: gatehouse does not implement LiteLLM's include, and "
                                 "ignoring it would run without the models and guardrails"),
    # A typo of a section is a mistake, not a LiteLLM feature.
    ({"guardrial": []}, "guardrial: unknown key; did you mean `guardrails`?"),
    ({"router_settings": {"model_group_alias": {"a": 5}}}, "router_settings.model_group_alias"),
    ({"general_settings": {"ui_access_mode": "admins"}}, "general_settings.ui_access_mode"),
])
def test_settings_that_would_weaken_the_gateway_or_are_typos_stop_the_start(config, needle):
    with pytest.raises(ConfigError) as err:
        config_from_dict(config)
    assert needle in str(err.value)


def test_an_unknown_callback_that_may_be_a_check_is_still_refused():
    with pytest.raises(ConfigError, match="unknown callback 'lakera_prompt_injection'"):
        create_app(config_from_dict({"callbacks": ["lakera_prompt_injection"]}),
                   extra_plugins=PLUGINS, load=())


def test_store_model_in_db_needs_the_database(monkeypatch):
    monkeypatch.setenv("STORE_MODEL_IN_DB", "True")
    with pytest.raises(ConfigError, match="general_settings.store_model_in_db: models are kept "
                                          "in the database"):
        create_app(config_from_dict({}), extra_plugins=PLUGINS, load=())


def test_store_model_in_db_with_a_weak_master_key_names_the_weak_key(monkeypatch):
    # LiteLLM's docs pair store_model_in_db with master_key: sk-1234; the start must say what is
    # wrong with the key, not fail on it with a traceback.
    monkeypatch.setenv("STORE_MODEL_IN_DB", "True")
    with pytest.raises(ConfigError) as err:
        create_app(config_from_dict({"general_settings": {"master_key": "sk-1234"}}),
                   extra_plugins=PLUGINS, load=())
    assert "weak master key" in str(err.value)
    assert "store_model_in_db" not in str(err.value)


def test_an_unknown_top_level_section_is_warned_about(caplog):
    config_from_dict({"my_team_notes": {"owner": "platform"}})
    assert "<config>: my_team_notes: unknown section; ignored" in caplog.text


def test_ui_access_mode_is_applied_so_not_warned_about(caplog):
    config = config_from_dict({"general_settings": {"ui_access_mode": "admin_only"}})
    assert config.general_settings.ui_access_mode == "admin_only"
    assert "ui_access_mode" not in caplog.text
