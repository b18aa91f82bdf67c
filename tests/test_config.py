"""config.yaml loading: models, aliases, env refs, and errors that name file, field and fix."""

import textwrap

import pytest

from doubles import PLUGINS
from gatehouse.app import create_app
from gatehouse.config import ConfigError, config_from_dict, load_config
from gatehouse.app import GATEWAY

# The guardrails quick-start's config blocks, as written there (LiteLLM names throughout).
REFERENCE_GUARDRAILS = """
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
      api_key: os.environ/OPENAI_API_KEY

guardrails:
  - guardrail_name: general-guard
    litellm_params:
      guardrail: aim
      mode: [pre_call, post_call]
      api_key: os.environ/AIM_API_KEY
      api_base: os.environ/AIM_API_BASE
      default_on: true # Optional

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
    guardrail_info: # Optional field, info is returned on GET /guardrails/list
      # you can enter any fields under info for consumers of your guardrail
      params:
        - name: "toxicity_score"
          type: "float"
          description: "Score between 0-1 indicating content toxicity level"
        - name: "pii_detection"
          type: "boolean"
"""

REFERENCE_DEFAULT_ON = """
guardrails:
  - guardrail_name: "aporia-pre-guard"
    litellm_params:
      guardrail: aporia
      mode: "pre_call"
      default_on: true
"""

REFERENCE_ENV = {
    "OPENAI_API_KEY": "sk-openai", "AIM_API_KEY": "aim-key", "AIM_API_BASE": "http://aim",
    "APORIA_API_KEY_1": "k1", "APORIA_API_BASE_1": "http://a1",
    "APORIA_API_KEY_2": "k2", "APORIA_API_BASE_2": "http://a2",
}


class VendorLike:
    """Stands in for the aim and aporia plugins: both take api_key/api_base."""

    from gatehouse import hookimpl

    @hookimpl
    def register_guardrails(self, register):
        from doubles import Probe
        register("aim", Probe)
        register("aporia", Probe)


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_reference_guardrails_block_loads_and_builds(tmp_path, monkeypatch):
    for name, value in REFERENCE_ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(write(tmp_path, REFERENCE_GUARDRAILS))
    assert [g.guardrail_name for g in config.guardrails] == [
        "general-guard", "aporia-pre-guard", "aporia-post-guard"]
    assert config.model_list[0].params.api_key.get_secret_value() == "sk-openai"
    app = create_app(config, extra_plugins=[("vendors", VendorLike())], load=())
    gateway = app[GATEWAY]
    assert gateway.guardrails.default_on == ("general-guard",)
    assert gateway.guardrails["aporia-pre-guard"].params.mode == ["during_call"]
    assert gateway.guardrails["general-guard"].params.mode == ["pre_call", "post_call"]
    assert gateway.guardrails.info["aporia-post-guard"]["params"][0]["name"] == "toxicity_score"


def test_reference_default_on_block_loads(tmp_path):
    config = load_config(write(tmp_path, REFERENCE_DEFAULT_ON))
    app = create_app(config, extra_plugins=[("vendors", VendorLike())], load=())
    assert app[GATEWAY].guardrails.default_on == ("aporia-pre-guard",)


def test_our_names_and_litellm_aliases_are_the_same(tmp_path):
    ours = config_from_dict({"model_list": [{"model_name": "m", "params": {"model": "mock/m"}}],
                             "settings": {"callbacks": ["x"]}})
    theirs = config_from_dict({
        "model_list": [{"model_name": "m", "litellm_params": {"model": "mock/m"}}],
        "litellm_settings": {"callbacks": ["x"]}})
    # The same data; each remembers only how its file spelled the keys, for error messages.
    assert [m.model_dump() for m in ours.model_list] == [m.model_dump() for m in theirs.model_list]
    assert ours.all_callbacks == theirs.all_callbacks == ["x"]


def test_missing_env_var_names_field_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(tmp_path, """
        model_list:
          - model_name: m
            params: {model: openai/m, api_key: os.environ/NOT_SET_ANYWHERE}
    """)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "model_list[0].params.api_key" in message
    assert "NOT_SET_ANYWHERE is not set" in message


@pytest.mark.parametrize("text,needles", [
    ("model_list: [{model_name: m}]", ["model_list[0].params", "Field required"]),
    ("model_list: [{model_name: m, params: {model: 'openai/'}}]",
     ["model_list[0].params.model", "'<provider>/<model>'"]),
    ("model_list: [{model_name: m, params: {model: mock/m, timeout: soon}}]",
     ["model_list[0].params.timeout", "'soon'"]),
    ("guardrails: [{guardrail_name: g, params: {mode: pre_call}}]",
     ["guardrails[0].params", "'guardrail'"]),
    ("modle_list: []", ["modle_list", "did you mean `model_list`?"]),
    ("model_list: [{model_name: m, litellm_params: {model: mock/m}, model_inf: {}}]",
     ["model_list[0].model_inf", "did you mean `model_info`?"]),
    ("- just a list", ["expected a mapping"]),
    ("model_list: [\n  bad: [", ["not valid YAML", "line"]),
])
def test_invalid_config_errors_name_the_path(tmp_path, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    for needle in needles:
        assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_secret_values_are_not_echoed_in_errors(tmp_path):
    path = write(tmp_path, "model_list: [{model_name: m, params: {model: mock/m, "
                           "api_key: [sk-hidden-value]}}]")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "model_list[0].params.api_key" in str(err.value)
    assert "sk-hidden-value" not in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")


def build(config):
    return create_app(config_from_dict(config), extra_plugins=PLUGINS, load=())


def test_unknown_guardrail_type_names_what_is_installed():
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "params": {"guardrail": "aim"}}]})
    assert "guardrails[0].params.guardrail" in str(err.value)
    assert "'aim'" in str(err.value) and "probe" in str(err.value)


def test_plugin_params_are_validated_by_the_plugin_model():
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "params": {
            "guardrail": "probe", "block_wrod": "x"}}]})
    assert "guardrails[0].params.block_wrod" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "params": {
            "guardrail": "probe", "mode": "sometimes"}}]})
    assert "guardrails[0].params.mode[0]" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "params": {
            "guardrail": "probe", "on_error": "shrug"}}]})
    assert "fail_closed" in str(err.value)


def test_mode_a_type_does_not_implement_is_a_startup_error():
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "params": {
            "guardrail": "pre_only", "mode": ["pre_call", "post_call"]}}]})
    assert "guardrails[0].params.mode" in str(err.value)
    assert "does not support mode 'post_call'; it supports: pre_call" in str(err.value)


def test_duplicate_guardrail_names_are_refused():
    with pytest.raises(ConfigError, match="'g' is used twice"):
        build({"guardrails": [{"guardrail_name": "g", "params": {"guardrail": "probe"}},
                              {"guardrail_name": "g", "params": {"guardrail": "probe"}}]})


def test_unknown_provider_is_named():
    with pytest.raises(ConfigError, match="unknown provider 'bedrock'"):
        build({"model_list": [{"model_name": "m", "params": {"model": "bedrock/claude"}}]})


def test_callbacks_shorthand_makes_a_default_on_guardrail_from_settings():
    app = build({"litellm_settings": {"callbacks": ["probe"], "block_word": "zzz",
                                      "unrelated_setting": 1}})
    guardrail = app[GATEWAY].guardrails["probe"]
    assert guardrail.params.default_on is True
    assert guardrail.params.block_word == "zzz"
    assert guardrail.params.mode == ["pre_call"]


def test_unknown_callback_is_named():
    with pytest.raises(ConfigError, match="unknown callback 'nope'"):
        build({"callbacks": ["nope"]})


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = load_config(write(tmp_path, "model_list: []"))
    assert config.resolve_path("words.txt") == tmp_path / "words.txt"


def test_litellm_blocked_user_check_callback_is_accepted(tmp_path):
    (tmp_path / "blocked.txt").write_text("# opted out\nuser_id_1\n\nuser_id_2\n")
    app = create_app(config_from_dict({"litellm_settings": {
        "callbacks": ["blocked_user_check"], "blocked_user_list": "blocked.txt"}},
        base_dir=tmp_path), load=())
    assert app[GATEWAY].principals.config_blocked == {"user_id_1", "user_id_2"}
    assert app[GATEWAY].guardrails == {}


def test_missing_blocked_user_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="blocked_user_list: cannot read"):
        create_app(config_from_dict({"litellm_settings": {"blocked_user_list": "nope.txt"}},
                                    base_dir=tmp_path), load=())


# --- misspelt keys, named where they sit in the file ------------------------------------------


def test_a_misspelt_plugin_param_is_named_with_the_one_meant():
    with pytest.raises(ConfigError) as err:
        build({"guardrails": [{"guardrail_name": "g", "litellm_params": {
            "guardrail": "probe", "block_wrod": "x", "api_kye": "sk-do-not-echo"}}]})
    message = str(err.value)
    assert ("guardrails[0].litellm_params.block_wrod: unknown key; did you mean `block_word`?"
            in message)
    assert "guardrails[0].litellm_params.api_kye: unknown key; did you mean `api_key`?" in message
    assert "sk-do-not-echo" not in message


class NeedsWord:
    """A plugin whose guardrail type cannot do without one param."""

    from gatehouse import hookimpl

    @hookimpl
    def register_guardrails(self, register):
        from doubles import PreOnly
        from gatehouse import GuardrailParams

        class Params(GuardrailParams):
            word: str

        register("needs_word", type("NeedsWordGuard", (PreOnly,), {"Params": Params}))


def test_a_param_missing_for_the_callbacks_shorthand_is_named_where_it_belongs():
    with pytest.raises(ConfigError) as err:
        create_app(config_from_dict({"litellm_settings": {"callbacks": ["needs_word"]}}),
                   extra_plugins=[("needs-word", NeedsWord())], load=())
    assert ("litellm_settings.word: Field required (read by callback 'needs_word' at "
            "litellm_settings.callbacks[0])") in str(err.value)
    assert "callbacks['needs_word']" not in str(err.value)


# --- settings gatehouse does not know: a typo stops the start, the rest are said to be ignored ---

STRONG_KEY = "sk-" + "4b1f0c8e2d9a7f6e5c3b1a0d9e8f7a6b" * 2


@pytest.mark.parametrize("typo", ["master_kye", "masterkey", "master-key", "Master_Key",
                                  "mastr_key"])
def test_a_misspelt_master_key_refuses_to_start_instead_of_serving_open(typo):
    with pytest.raises(ConfigError) as err:
        build({"general_settings": {typo: STRONG_KEY}})
    assert f"general_settings.{typo}: unknown setting; did you mean `master_key`?" in str(
        err.value)
    assert STRONG_KEY not in str(err.value)


def test_a_misspelt_setting_names_where_it_sits_in_the_file():
    with pytest.raises(ConfigError) as err:
        build({"litellm_settings": {"store_audit_log": True}})
    assert ("litellm_settings.store_audit_log: unknown setting; did you mean "
            "`store_audit_logs`?") in str(err.value)
    with pytest.raises(ConfigError, match=r"^config: settings\.blocked_users_list: .*"
                                          r"`blocked_user_list`"):
        build({"settings": {"blocked_users_list": ["u1"]}})


def test_unimplemented_and_unknown_settings_are_warned_about_as_ignored(caplog):
    app = build({"general_settings": {"alerting": ["slack"], "enforce_user_param": False,
                                      "totally_unrelated": 1},
                 "litellm_settings": {"success_callback": ["langfuse"], "drop_params": True,
                                      "my_own_thing": 1}})
    assert app[GATEWAY].guardrails == {}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for where in ("general_settings.alerting", "general_settings.enforce_user_param",
                  "litellm_settings.success_callback", "litellm_settings.drop_params"):
        key = where.split(".")[1]
        assert f"config: {where}: gatehouse does not implement LiteLLM's {key}; ignored" in warned
    for where in ("general_settings.totally_unrelated", "litellm_settings.my_own_thing"):
        assert f"config: {where}: unknown setting; ignored" in warned


@pytest.mark.parametrize("section,setting,value,needle", [
    ("general_settings", "allowed_routes", ["/v1/chat/completions"], "serve routes"),
    ("general_settings", "custom_auth", "my_auth.check", "skip your own authentication"),
    ("general_settings", "enforce_user_param", True, "enforced_params: [user]"),
    ("litellm_settings", "guardrails", [{"prompt_injection": {"default_on": True}}],
     "run none of the guardrails it lists"),
    ("litellm_settings", "max_budget", 0, "spend unlimited"),
])
def test_an_unimplemented_setting_that_would_weaken_the_gateway_refuses_to_start(
        section, setting, value, needle):
    with pytest.raises(ConfigError) as err:
        build({section: {setting: value}})
    message = str(err.value)
    assert f"{section}.{setting}: gatehouse does not implement LiteLLM's {setting}" in message
    assert needle in message and "remove it or switch it off" in message


def test_plugin_options_in_settings_are_known_and_their_misspellings_named(caplog):
    build({"litellm_settings": {"callbacks": ["probe"], "block_word": "zzz"}})
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    with pytest.raises(ConfigError) as err:
        build({"litellm_settings": {"callbacks": ["probe"], "block_wrod": "zzz"}})
    assert ("litellm_settings.block_wrod: unknown setting; did you mean `block_word`?"
            in str(err.value))


# --- a file with several mistakes ---------------------------------------------------------------


def test_several_mistakes_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        build({
            "model_list": [{"model_name": "a", "params": {"model": "bedrock/a"}},
                           {"model_name": "b", "params": {"model": "vertex/b"}}],
            "guardrails": [
                {"guardrail_name": "g1", "params": {"guardrail": "probe", "mode": "sometimes",
                                                    "block_wrod": "x"}},
                {"guardrail_name": "g2", "params": {"guardrail": "no-such-type"}},
                {"guardrail_name": "g3", "params": {"guardrail": "pre_only",
                                                    "mode": "post_call"}},
                {"guardrail_name": "g1", "params": {"guardrail": "probe"}}],
            "callbacks": ["nope"],
            "general_settings": {"master_key": "sk-1234", "master_kye": STRONG_KEY,
                                 "allowed_ips": ["not-an-ip"]},
            "litellm_settings": {"blocked_user_list": "missing.txt"}})
    assert [p.split(": ")[0] for p in err.value.problems] == [
        "general_settings.master_kye",
        "guardrails[0].params.mode[0]",
        "guardrails[0].params.block_wrod",
        "guardrails[1].params.guardrail",
        "guardrails[2].params.mode",
        "guardrails[3].guardrail_name",
        "callbacks[0]",
        "model_list[0].params.model",
        "model_list[1].params.model",
        "general_settings.master_key",
        "litellm_settings.blocked_user_list",
        "general_settings.allowed_ips[0]",
    ]
    lines = str(err.value).splitlines()
    assert lines[0] == "config: 12 problems:"
    assert lines[1:] == [f"  {problem}" for problem in err.value.problems]


def test_every_unset_environment_variable_is_named_with_the_other_mistakes(monkeypatch):
    monkeypatch.delenv("NOT_SET_A", raising=False)
    monkeypatch.delenv("NOT_SET_B", raising=False)
    with pytest.raises(ConfigError) as err:
        config_from_dict({
            "model_list": [{"model_name": "m", "params": {
                "model": "openai/m", "api_key": "os.environ/NOT_SET_A",
                "timeout": "os.environ/NOT_SET_B"}}],
            "general_settings": {"max_request_size_mb": "big"}})
    assert err.value.problems == (
        "model_list[0].params.api_key: environment variable NOT_SET_A is not set",
        "model_list[0].params.timeout: environment variable NOT_SET_B is not set",
        "general_settings.max_request_size_mb: Input should be a valid number, unable to parse "
        "string as a number (got 'big')")
