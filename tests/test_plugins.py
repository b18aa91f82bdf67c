"""Plugin discovery through real entry points: installed distributions are simulated by
writing a module and its ``.dist-info`` (with ``entry_points.txt``) into a folder on sys.path,
which is exactly what importlib.metadata reads for an installed package."""

import os
import subprocess
import sys

import orjson
import pytest

from gatehouse.app import create_app
from gatehouse.config import ConfigError, config_from_dict
from gatehouse.app import GATEWAY
from gatehouse.plugins import BUNDLED_TYPES, PluginError, load_plugins
from gatehouse.testing import check_config

GUARDRAIL_MODULE = """
from gatehouse import Guardrail, GuardrailBlocked, hookimpl

class {cls}(Guardrail):
    @hookimpl
    def pre_call(self, call):
        if "{word}" in str(call.body):
            raise GuardrailBlocked("{cls} blocked")

@hookimpl
def register_guardrails(register):
    register("{type_name}", {cls})
"""


def guard_source(cls="Shout", word="LOUD", type_name="shout"):
    return GUARDRAIL_MODULE.format(cls=cls, word=word, type_name=type_name)


def test_installed_plugin_offers_its_type(site, monkeypatch):
    monkeypatch.delenv("GATEHOUSE_LOAD_PLUGINS", raising=False)
    site("gatehouse-shout", "gh_shout", guard_source(), version="2.3")
    plugins = load_plugins()
    registered = plugins.guardrail_type("shout")
    assert registered is not None
    assert (registered.plugin.distribution, registered.plugin.version) == ("gatehouse-shout",
                                                                           "2.3")
    # The core's own built-ins load the same way.
    assert {"openai", "mock"} <= set(plugins.providers)
    assert plugins.providers["mock"].plugin.distribution == "gatehouse-proxy"


async def test_installed_plugin_runs_in_the_gateway(site, aiohttp_client):
    site("gatehouse-shout", "gh_shout", guard_source())
    app = create_app(config_from_dict({
        "model_list": [{"model_name": "m", "params": {"model": "mock/m"}}],
        "guardrails": [{"guardrail_name": "s", "params": {"guardrail": "shout",
                                                         "default_on": True}}]}), load=None)
    client = await aiohttp_client(app)
    body = {"model": "m", "messages": [{"role": "user", "content": "LOUD"}]}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["error"] == "Shout blocked"


@pytest.mark.parametrize("setting,loaded", [
    (None, True), ("gatehouse-shout", True), ("gh_shout", True), ("", False),
    ("gatehouse-other", False), (" gatehouse-other , gatehouse-shout ", True),
])
def test_gatehouse_load_plugins_limits_what_loads(site, monkeypatch, setting, loaded):
    site("gatehouse-shout", "gh_shout", guard_source())
    if setting is None:
        monkeypatch.delenv("GATEHOUSE_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("GATEHOUSE_LOAD_PLUGINS", setting)
    plugins = load_plugins()
    assert (plugins.guardrail_type("shout") is not None) == loaded
    assert "mock" in plugins.providers  # built-ins always load


def test_plugin_that_fails_to_import_names_its_distribution(site):
    site("gatehouse-broken", "gh_broken", "import does_not_exist_anywhere\n", version="0.9")
    with pytest.raises(PluginError) as err:
        load_plugins(load=["gatehouse-broken"])
    message = str(err.value)
    assert "gatehouse-broken" in message and "0.9" in message
    assert "ModuleNotFoundError" in message


def test_type_registered_twice_names_both_distributions(site):
    site("gatehouse-shout", "gh_shout", guard_source())
    site("gatehouse-copycat", "gh_copycat", guard_source(cls="Copy"))
    with pytest.raises(PluginError) as err:
        load_plugins(load=["gatehouse-shout", "gatehouse-copycat"])
    assert "'shout'" in str(err.value)
    assert "gatehouse-shout" in str(err.value) and "gatehouse-copycat" in str(err.value)


def test_misspelt_hook_is_refused(site):
    site("gatehouse-typo", "gh_typo", """
        from gatehouse import hookimpl

        @hookimpl
        def register_guardrial(register):
            pass
    """)
    with pytest.raises(PluginError, match="register_guardrial"):
        load_plugins(load=["gatehouse-typo"])


def test_misspelt_hook_on_a_guardrail_class_is_refused(site):
    site("gatehouse-typo2", "gh_typo2", """
        from gatehouse import Guardrail, hookimpl

        class Typo(Guardrail):
            @hookimpl
            def pre_cal(self, call):
                pass

        @hookimpl
        def register_guardrails(register):
            register("typo", Typo)
    """)
    plugins = load_plugins(load=["gatehouse-typo2"])
    with pytest.raises(PluginError, match="pre_cal"):
        create_app(config_from_dict({"guardrails": [
            {"guardrail_name": "t", "params": {"guardrail": "typo"}}]}), plugins=plugins)


def test_hook_with_unknown_argument_is_refused(site):
    site("gatehouse-badarg", "gh_badarg", """
        from gatehouse import Guardrail, hookimpl

        class BadArg(Guardrail):
            @hookimpl
            def pre_call(self, call, request):
                pass

        @hookimpl
        def register_guardrails(register):
            register("badarg", BadArg)
    """)
    plugins = load_plugins(load=["gatehouse-badarg"])
    with pytest.raises(Exception, match="request"):
        create_app(config_from_dict({"guardrails": [
            {"guardrail_name": "b", "params": {"guardrail": "badarg"}}]}), plugins=plugins)


def test_uninstalled_type_is_a_config_error_not_a_crash(site):
    with pytest.raises(ConfigError, match="unknown guardrail type 'shout'"):
        create_app(config_from_dict({"guardrails": [
            {"guardrail_name": "s", "params": {"guardrail": "shout"}}]}), load=())


async def test_plugin_routes_and_lifecycle_hooks(site, aiohttp_client):
    site("gatehouse-extras", "gh_extras", """
        from aiohttp import web
        from gatehouse import hookimpl

        EVENTS = []

        @hookimpl
        def register_routes(app, gateway):
            async def hello(request):
                return web.json_response({"models": list(gateway.router.model_names)})
            app.router.add_get("/extras/hello", hello)

        @hookimpl
        async def startup(gateway):
            EVENTS.append("startup")

        @hookimpl
        def shutdown(gateway):
            EVENTS.append("shutdown")
    """)
    app = create_app(config_from_dict({"model_list": [
        {"model_name": "m", "params": {"model": "mock/m"}}]}), load=["gatehouse-extras"])
    client = await aiohttp_client(app)
    assert await (await client.get("/extras/hello")).json() == {"models": ["m"]}
    extras = sys.modules["gh_extras"]
    assert extras.EVENTS == ["startup"]
    await client.close()
    assert extras.EVENTS == ["startup", "shutdown"]
    assert app[GATEWAY].http is not None


# --- local hooks and visible discovery -------------------------------------------------------

LOCAL_GUARD = """
from gatehouse import Guardrail, GuardrailBlocked, hookimpl

class NoPirates(Guardrail):
    @hookimpl
    def pre_call(self, call):
        if "arr" in str(call.body):
            raise GuardrailBlocked("No pirates")

NOT_A_GUARDRAIL = 42
"""


async def test_local_guardrail_class_resolved_beside_the_config(tmp_path, aiohttp_client):
    (tmp_path / "my_local_guard.py").write_text(LOCAL_GUARD)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "model_list: [{model_name: m, params: {model: mock/m}}]\n"
        "guardrails:\n"
        "  - guardrail_name: pirates\n"
        "    params: {guardrail: 'my_local_guard:NoPirates', default_on: true}\n")
    from gatehouse.config import load_config
    client = await aiohttp_client(create_app(load_config(config_file), load=()))
    resp = await client.post("/v1/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "arr matey"}]})
    assert resp.status == 400
    assert resp.headers["x-gatehouse-applied-guardrails"] == "pirates"
    sys.modules.pop("my_local_guard", None)


@pytest.mark.parametrize("target,needle", [
    ("no_such_module_here:Thing", "cannot import 'no_such_module_here'"),
    ("my_local_guard2:NOT_A_GUARDRAIL", "is not a gatehouse.Guardrail subclass"),
    ("my_local_guard2:Missing", "is not a gatehouse.Guardrail subclass"),
])
def test_local_guardrail_errors_are_config_errors(tmp_path, target, needle):
    (tmp_path / "my_local_guard2.py").write_text(LOCAL_GUARD)
    with pytest.raises(ConfigError, match=needle):
        create_app(config_from_dict({"guardrails": [
            {"guardrail_name": "x", "params": {"guardrail": target}}]}, base_dir=tmp_path),
            load=())
    sys.modules.pop("my_local_guard2", None)


def test_gatehouse_plugins_lists_distribution_hooks_and_types(site, tmp_path):
    site("gatehouse-shout", "gh_shout", guard_source(), version="4.5")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "GATEHOUSE_LOAD_PLUGINS": "gh_shout"}
    result = subprocess.run([sys.executable, "-m", "gatehouse.cli", "plugins", "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = {p["distribution"]: p for p in orjson.loads(result.stdout)
              if p["name"] == "gh_shout"}
    shout = listed["gatehouse-shout"]
    assert shout["version"] == "4.5"
    assert shout["hooks"] == ["register_guardrails"]
    assert shout["guardrail_types"] == [{"name": "shout", "aliases": [], "hooks": ["pre_call"]}]
    human = subprocess.run([sys.executable, "-m", "gatehouse.cli", "plugins"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert "gatehouse-shout 4.5" in human.stdout
    assert "guardrail type shout: pre_call" in human.stdout


async def test_plugins_route_matches_the_cli_and_needs_the_master_key(site, aiohttp_client,
                                                                      tmp_path):
    site("gatehouse-shout", "gh_shout", guard_source(), version="4.5")
    plugins = load_plugins(load=["gatehouse-shout"])
    app = create_app(config_from_dict({"general_settings": {
        "master_key": "sk-long-enough-master"}}, base_dir=tmp_path), plugins=plugins)
    client = await aiohttp_client(app)
    assert (await client.get("/-/plugins")).status == 401
    resp = await client.get("/-/plugins",
                            headers={"Authorization": "Bearer sk-long-enough-master"})
    assert await resp.json() == plugins.describe()
    assert any(p["distribution"] == "gatehouse-shout" for p in await resp.json())
    # A virtual key sees what is installed, but not the versions an attacker would look up.
    made = await (await client.post("/key/generate", json={}, headers={
        "Authorization": "Bearer sk-long-enough-master"})).json()
    resp = await client.get("/-/plugins", headers={"Authorization": f"Bearer {made['key']}"})
    assert resp.status == 200
    seen = await resp.json()
    assert [p["distribution"] for p in seen] == [p["distribution"] for p in plugins.describe()]
    assert all("version" not in p for p in seen)


def test_failing_startup_hook_is_named_and_leaves_nothing_open(site, tmp_path):
    site("gatehouse-sulky", "gh_sulky", """
        from gatehouse import hookimpl

        @hookimpl
        async def startup(gateway):
            raise RuntimeError("vendor settings missing")
    """)
    config = tmp_path / "c.yaml"
    config.write_text("model_list: [{model_name: m, params: {model: mock/m}}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse.cli", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "GATEHOUSE_LOAD_PLUGINS": "gh_sulky"})
    assert result.returncode == 2
    assert "startup hook of plugin 'gh_sulky' failed: vendor settings missing" in result.stderr
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr


# --- a type that is not loaded: excluded, not installed, or bundled ---------------------------


def test_a_type_whose_plugin_is_excluded_is_reported_as_excluded_not_missing(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("guardrails:\n"
                      "  - guardrail_name: no-codewords\n"
                      "    litellm_params: {guardrail: banned_keywords, "
                      "banned_keywords_list: [x]}\n")
    result = check_config(config, load="gatehouse-secrets")
    assert result.returncode == 2
    assert ("guardrails[0].litellm_params.guardrail: unknown guardrail type 'banned_keywords': "
            "its plugin gatehouse-banned-keywords is installed but not loaded: "
            "GATEHOUSE_LOAD_PLUGINS does not name it; loaded types: hide-secrets"
            ) in result.stderr
    assert "not installed" not in result.stderr and "pip install" not in result.stderr


def test_an_excluded_third_party_plugin_is_named_for_an_unknown_type(site):
    site("gatehouse-shout", "gh_shout", guard_source())
    with pytest.raises(ConfigError) as err:
        create_app(config_from_dict({"guardrails": [
            {"guardrail_name": "s", "params": {"guardrail": "shout"}}]}),
            load=["gatehouse-secrets"])
    assert "installed but not loaded" in str(err.value)
    assert "gatehouse-shout" in str(err.value)


def test_a_bundled_type_that_is_not_installed_names_its_distribution():
    plugins = load_plugins(load=["gatehouse-secrets"])
    plugins.excluded.clear()  # as if only gatehouse-secrets were installed
    with pytest.raises(ConfigError) as err:
        create_app(config_from_dict({"litellm_settings": {"callbacks": [
            "hide_secrets", "lakera_prompt_injection"]}}), plugins=plugins)
    assert ("litellm_settings.callbacks[1]: unknown callback 'lakera_prompt_injection': its "
            "plugin gatehouse-lakera (bundled with gatehouse) is not installed") in str(err.value)


def test_an_unknown_callback_lists_the_accepted_names_and_aliases():
    plugins = load_plugins(load=["gatehouse-secrets", "gatehouse-aporia"])
    with pytest.raises(ConfigError) as err:
        create_app(config_from_dict({"callbacks": ["hide_secret"]}), plugins=plugins)
    assert ("accepted callbacks: aporia (or aporia_prompt_injection, aporio_prompt_injection), "
            "blocked_user_check, hide-secrets (or hide_secrets), or a guardrail_name from "
            "guardrails:") in str(err.value)


def test_the_bundled_table_matches_what_the_bundled_plugins_register():
    registered = {}
    for distribution in set(BUNDLED_TYPES.values()):
        for r in load_plugins(load=[distribution]).guardrail_types.values():
            if r.plugin.distribution == distribution:
                registered.update(dict.fromkeys((r.name, *r.aliases), distribution))
    assert registered == BUNDLED_TYPES
