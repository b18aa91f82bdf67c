"""Test contracts a plugin's tests inherit -- what every guardrail type, every installed
plugin distribution and every vendor guardrail owes its users -- and ``check_config``, the real
command run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import orjson
import pytest

from ..app import create_app
from ..config import ConfigError, config_from_dict
from ..guardrails.base import Guardrail
from ..plugins import ENTRY_POINT_GROUP, load_plugins
from .doubles import VENDOR_OUTAGES, FakeVendor

def check_config(config: Path, *, load: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``gatehouse check-config`` as a user would, in a fresh process, with
    ``GATEHOUSE_LOAD_PLUGINS=load`` -- to prove an installed plugin is found (and that its
    types are unknown without it)."""
    return subprocess.run(
        [sys.executable, "-m", "gatehouse.cli", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {}), "GATEHOUSE_LOAD_PLUGINS": load})



class GuardrailContract:
    """What every guardrail type owes its users, as tests any plugin can inherit.

    Subclass it as ``class TestMyGuardrailContract(GuardrailContract)`` and set:

    * ``plugin`` -- the plugin module (or object) that registers the type;
    * ``guardrail_type`` -- the type name;
    * ``modes`` -- the modes the type supports;
    * ``blocked_text`` -- a user message the guardrail refuses in ``pre_call`` (or None);
    * ``blocked_reply`` -- an upstream reply it refuses in ``post_call`` (or None);
    * ``rewritten_text`` -- a user message it rewrites rather than refuses (or None);
    * ``rewritten_reply`` -- an upstream reply it rewrites in ``post_call`` (or None): streamed
      in 2 to 5 chunks, split anywhere, the client must get what a whole reply gets, in valid
      OpenAI chunks, and never text that a later rewrite would have changed.

    Params a working instance needs (API keys, a fake vendor's URL) come from the
    ``guardrail_params`` fixture, and more gateway config (a ``model_list``) from
    ``gateway_config``: override them in the subclass when they depend on other fixtures.
    """

    plugin: Any = None
    guardrail_type: str = ""
    modes: tuple[str, ...] = ("pre_call",)
    blocked_text: str | None = None
    blocked_reply: str | None = None
    rewritten_text: str | None = None
    rewritten_reply: str | None = None
    allowed_text = "What is the capital of France?"
    allowed_reply = "Paris is the capital of France."

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Contract clauses that do not apply to a type are left out rather than skipped.
        super().__init_subclass__(**kwargs)
        applies = {
            "test_block_has_the_reference_body_and_upstream_is_spared":
                cls.blocked_text is not None and "pre_call" in cls.modes,
            "test_only_configured_modes_run":
                cls.blocked_reply is not None and "pre_call" in cls.modes,
            "test_rewrite_keeps_message_structure_and_other_parts":
                cls.rewritten_text is not None,
            "test_checks_streams_before_content_is_sent":
                cls.blocked_reply is not None and "post_call" in cls.modes,
            "test_rewrites_a_stream_as_a_whole_reply_whatever_its_chunks":
                cls.rewritten_reply is not None and "post_call" in cls.modes,
        }
        for name, applicable in applies.items():
            if not applicable:
                setattr(cls, name, None)

    @pytest.fixture
    def guardrail_params(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def gateway_config(self) -> dict[str, Any]:
        """More config for the gateway under test, e.g. a ``model_list`` the type needs."""
        return {}

    @pytest.fixture
    def start(self, gateway, guardrail_params, gateway_config):
        async def start(modes, **extra):
            guardrail = {"guardrail_name": "under-test", "params": {
                "guardrail": self.guardrail_type, "mode": list(modes), "default_on": True,
                **guardrail_params, **extra}}
            return await gateway({**gateway_config, "guardrails": [guardrail]},
                                 plugins=[("plugin-under-test", self.plugin)])
        return start

    @staticmethod
    def _chat(content: Any, **extra: Any) -> dict[str, Any]:
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}

    def test_registered_under_its_type(self):
        registered = load_plugins([("plugin-under-test", self.plugin)], load=()).guardrail_type(
            self.guardrail_type)
        assert registered is not None, f"{self.guardrail_type!r} is not registered"
        assert issubclass(registered.obj, Guardrail)

    async def test_each_declared_mode_runs_and_allows_clean_text(self, start, fake_upstream):
        fake_upstream.reply = self.allowed_reply
        for mode in self.modes:
            if mode == "logging_only":
                continue
            client = await start([mode])
            resp = await client.post("/v1/chat/completions", json=self._chat(self.allowed_text))
            assert resp.status == 200, await resp.text()
            assert resp.headers.get("x-gatehouse-applied-guardrails") == "under-test", mode

    def test_undeclared_modes_are_refused_at_start(self, guardrail_params, gateway_config):
        for mode in {"pre_call", "during_call", "post_call", "logging_only"} - set(self.modes):
            config = {**gateway_config, "guardrails": [{"guardrail_name": "x", "params": {
                "guardrail": self.guardrail_type, "mode": mode, **guardrail_params}}]}
            with pytest.raises(ConfigError, match=f"does not support mode '{mode}'"):
                create_app(config_from_dict(config),
                           extra_plugins=[("plugin-under-test", self.plugin)], load=())

    async def test_block_has_the_reference_body_and_upstream_is_spared(self, start,
                                                                       fake_upstream):
        client = await start(["pre_call"])
        resp = await client.post("/v1/chat/completions", json=self._chat(self.blocked_text))
        assert 400 <= resp.status < 500
        body = await resp.json()
        assert set(body) == {"error"}
        error = body["error"]
        # A message SDKs show as it is, starting with the guardrail's own words; the verdict as
        # an object for programs.
        details = error["details"]
        assert isinstance(details, dict) and isinstance(details["error"], str)
        assert isinstance(error["message"], str)
        assert error["message"].startswith(details["error"])
        assert (error["type"], error["param"], error["code"]) == (
            "guardrail_violation", None, str(resp.status))
        assert fake_upstream.received == []

    async def test_only_configured_modes_run(self, start, fake_upstream):
        fake_upstream.reply = self.blocked_reply
        client = await start(["pre_call"])
        resp = await client.post("/v1/chat/completions", json=self._chat(self.allowed_text))
        assert resp.status == 200, "a pre_call-only guardrail must not check the reply"

    async def test_rewrite_keeps_message_structure_and_other_parts(self, start, fake_upstream):
        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        body = {"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": self.rewritten_text}, image]},
        ]}
        client = await start([m for m in self.modes if m == "pre_call"] or self.modes[:1])
        resp = await client.post("/v1/chat/completions", json=body)
        assert resp.status == 200, await resp.text()
        sent = fake_upstream.last["messages"]
        assert [m["role"] for m in sent] == ["system", "user"]
        assert sent[0] == {"role": "system", "content": "Be brief."}
        parts = sent[1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url"]
        assert parts[1] == image
        assert parts[0]["text"] != self.rewritten_text

    async def test_checks_streams_before_content_is_sent(self, start, fake_upstream):
        middle = len(self.blocked_reply) // 2
        fake_upstream.chunks = [self.blocked_reply[:middle], self.blocked_reply[middle:]]
        client = await start(["post_call"])
        resp = await client.post("/v1/chat/completions",
                                 json=self._chat(self.allowed_text, stream=True))
        events = [line[6:] for line in (await resp.text()).split("\n")
                  if line.startswith("data: ")]
        assert events and events[-1] != "[DONE]", "a refused reply must not finish normally"
        assert "error" in orjson.loads(events[-1])
        sent = "".join(choice.get("delta", {}).get("content") or ""
                       for event in events[:-1] for choice in orjson.loads(event)["choices"])
        assert self.blocked_reply not in sent
        # A clean reply streams through unchanged.
        fake_upstream.chunks = [self.allowed_reply[:5], self.allowed_reply[5:]]
        resp = await client.post("/v1/chat/completions",
                                 json=self._chat(self.allowed_text, stream=True))
        events = [line[6:] for line in (await resp.text()).split("\n")
                  if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        sent = "".join(choice.get("delta", {}).get("content") or ""
                       for event in events[:-1] for choice in orjson.loads(event)["choices"])
        assert sent == self.allowed_reply

    async def test_rewrites_a_stream_as_a_whole_reply_whatever_its_chunks(self, start,
                                                                          fake_upstream):
        reply = self.rewritten_reply
        assert reply is not None
        client = await start(["post_call"])
        fake_upstream.reply = reply
        resp = await client.post("/v1/chat/completions", json=self._chat(self.allowed_text))
        assert resp.status == 200, await resp.text()
        whole = (await resp.json())["choices"][0]["message"]["content"]
        assert whole != reply, "rewritten_reply is not rewritten in post_call"
        for cuts in _cut_points(len(reply)):
            fake_upstream.chunks = [reply[a:b] for a, b in zip((0, *cuts), (*cuts, len(reply)))]
            resp = await client.post("/v1/chat/completions", json=self._chat(
                self.allowed_text, stream=True, stream_options={"include_usage": True}))
            assert resp.status == 200, await resp.text()
            # What is sent cannot be taken back: the pieces add up to the whole reply's text
            # only if no piece carried text a later rewrite changed.
            assert stream_content(await resp.text()) == whole, cuts


def _cut_points(length: int) -> list[tuple[int, ...]]:
    """Where to split a reply into 2 to 5 chunks: into 2 at every few characters, and into
    3, 4 and 5 evenly and off-center."""
    cuts: list[tuple[int, ...]] = [(at,) for at in range(1, length, max(1, length // 24))]
    for pieces in (3, 4, 5):
        for shift in (0, length // (3 * pieces)):
            points = sorted({min(length - 1, max(1, length * i // pieces + shift))
                             for i in range(1, pieces)})
            cuts.append(tuple(points))
    return cuts


def stream_content(body: str) -> str:
    """Choice 0's content in an SSE chat stream, after checking the stream is one a client of
    OpenAI's reads: every event a JSON chunk of the same id and object but the closing
    ``[DONE]``; the role first; one ``finish_reason`` per choice with nothing after it; the
    usage chunk, with no choices, after every choice finished."""
    assert body.endswith("data: [DONE]\n\n"), body[-200:]
    events = [orjson.loads(line[len("data: "):]) for line in body.split("\n\n")[:-2]
              if line.startswith("data: ")]
    assert len(events) == len(body.split("\n\n")) - 2, "every event is one data line"
    assert {(e["id"], e["object"]) for e in events} == {(events[0]["id"],
                                                          "chat.completion.chunk")}
    assert events[-1]["choices"] == [] and set(events[-1]["usage"]) >= {
        "prompt_tokens", "completion_tokens", "total_tokens"}
    content, finished, roles = [], set(), []
    for event in events[:-1]:
        for choice in event["choices"]:
            index = choice["index"]
            assert index not in finished, "a choice goes on after its finish_reason"
            delta = choice["delta"]
            if "role" in delta:
                roles.append(index)
            if choice.get("finish_reason"):
                finished.add(index)
            elif index == 0:
                assert 0 in roles, "content before the role"
            if index == 0 and delta.get("content"):
                content.append(delta["content"])
    assert roles == [0] and finished == {0}
    return "".join(content)


class InstallContract:
    """What pip-installing a plugin's distribution gives an operator, checked with the real
    ``gatehouse check-config`` in a fresh process.

    Subclass it in the plugin's ``tests/`` folder (beside ``src/``) as
    ``class TestMyPluginInstall(InstallContract)`` and set:

    * ``distribution`` -- the distribution name, e.g. ``"gatehouse-acme"``;
    * ``entry_points`` -- ``{name: package}`` as in pyproject.toml's ``gatehouse`` entry-point
      group, each package kept in ``src/<package>``;
    * ``configs`` -- ``{file: what check-config says of it without the plugin}``, config.yaml
      files beside the test module, one per way an operator may configure the plugin (a
      ``guardrails`` entry, a ``callbacks`` shorthand, ...);
    * ``files`` -- other files beside the test module that the configs name;
    * ``env`` -- what the configs' ``os.environ/`` references need;
    * ``refused`` -- ``{config.yaml text: (what check-config says, environment changes)}``:
      configs check-config must refuse naming what is missing (a key, a base URL), run with
      those variables set, or unset where the value is None.

    Each check runs on copies in a fresh folder, so nothing it starts writes into the source
    tree. The ``installed`` fixture pip-installs the project (editable, without dependencies)
    once per class and returns its folder; override it where the plugin is installed another
    way.
    """

    distribution: str = ""
    entry_points: dict[str, str] = {}
    configs: dict[str, str] = {}
    files: tuple[str, ...] = ()
    env: dict[str, str] = {}
    refused: dict[str, tuple[str, dict[str, str | None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Left out rather than skipped where the plugin has nothing to refuse.
        super().__init_subclass__(**kwargs)
        if not cls.refused:
            cls.test_check_config_names_what_is_missing = None  # type: ignore[assignment]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "refused_config" in metafunc.fixturenames:
            metafunc.parametrize("refused_config", list(self.refused))
        if "entry_point" in metafunc.fixturenames:
            metafunc.parametrize("entry_point", list(self.entry_points))
        if "config_file" in metafunc.fixturenames:
            metafunc.parametrize("config_file", list(self.configs))

    @pytest.fixture(scope="class")
    @classmethod
    def installed(cls, request: pytest.FixtureRequest) -> Path:
        # Entry points are read from install metadata, which an edited pyproject.toml leaves
        # stale until the project is installed again.
        project = request.path.parents[1]
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(project)],
            capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr
        return project

    @pytest.fixture
    def config_copy(self, request, tmp_path, config_file) -> Path:
        for name in (config_file, *self.files):
            (tmp_path / name).write_bytes((request.path.parent / name).read_bytes())
        return tmp_path / config_file

    def test_the_entry_point_is_this_source_tree(self, installed, entry_point):
        (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == entry_point]
        assert ep.dist is not None and ep.dist.name == self.distribution
        package = self.entry_points[entry_point]
        assert Path(ep.load().__file__).parent == installed / "src" / package

    def test_check_config_accepts_it_when_the_plugin_loads(self, installed, config_copy):
        result = check_config(config_copy, load=self.distribution, env=self.env)
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout

    def test_check_config_names_it_unknown_without_the_plugin(self, installed, config_copy,
                                                              config_file):
        result = check_config(config_copy, load="", env=self.env)
        assert result.returncode == 2, result.stderr
        assert self.configs[config_file] in result.stderr


    def test_check_config_names_what_is_missing(self, installed, tmp_path, monkeypatch,
                                                refused_config):
        says, changes = self.refused[refused_config]
        for name, value in changes.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        config = tmp_path / "config.yaml"
        config.write_text(refused_config)
        result = check_config(config, load=self.distribution)
        assert result.returncode == 2, result.stdout
        assert says in result.stderr
        assert "Traceback" not in result.stderr


_UNCHECKED_REPLY = "An upstream reply no guardrail has checked."
# A stalled vendor is given up on quickly; one that answers (an error, a closed port) is given
# time enough to answer on a loaded machine, so it is never mistaken for a timeout.
OUTAGE_TIMEOUT = 0.3
ANSWER_TIMEOUT = 10.0


class OutageContract:
    """What a vendor guardrail owes its users when the vendor gives no verdict: with
    ``on_error: fail_closed`` the call is refused (502, or 504 on a timeout) naming the
    guardrail once and nothing unchecked reaches the client; with ``fail_open`` it goes
    through with a warning; the API key shows in neither the response nor the logs.

    Subclass it as ``class TestMyGuardrailOutage(OutageContract)`` and set:

    * ``plugin`` and ``guardrail_type`` -- as for :class:`GuardrailContract`;
    * ``modes`` -- the modes to check; every outage is tried in each;
    * ``extra_outages`` -- the plugin's own ways its vendor fails, tried besides
      :data:`VENDOR_OUTAGES`; override ``break_vendor`` to make them.

    The guardrail gets ``api_key`` (a class attribute, for a vendor whose keys have a format),
    a broken base URL (in the param ``api_base_param`` names, for a vendor whose base has
    another name), ``timeout`` and ``on_error``; more params a working instance needs come from
    the ``guardrail_params`` fixture.
    """

    plugin: Any = None
    guardrail_type: str = ""
    modes: tuple[str, ...] = ("pre_call",)
    extra_outages: tuple[str, ...] = ()
    api_key: str = "vendor-key-never-shown-4242"
    api_base_param: str = "api_base"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "outage" in metafunc.fixturenames:
            metafunc.parametrize("outage", [*VENDOR_OUTAGES, *self.extra_outages])
        if "mode" in metafunc.fixturenames:
            metafunc.parametrize("mode", self.modes)

    def break_vendor(self, vendor: FakeVendor, outage: str) -> str:
        """Make ``vendor`` fail as ``outage`` and return the ``api_base`` to configure; an
        override makes ``extra_outages`` and leaves the rest to ``super()``."""
        return vendor.break_as(outage)

    @pytest.fixture
    def guardrail_params(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def start(self, gateway, fake_vendor, fake_upstream, guardrail_params):
        async def start(mode: str, outage: str, on_error: str):
            api_base = self.break_vendor(await fake_vendor(), outage)
            fake_upstream.reply = _UNCHECKED_REPLY
            guardrail = {"guardrail_name": "under-test", "params": {
                "guardrail": self.guardrail_type, "mode": mode, "default_on": True,
                "api_key": self.api_key, self.api_base_param: api_base, "on_error": on_error,
                "timeout": OUTAGE_TIMEOUT if outage == "timeout" else ANSWER_TIMEOUT,
                **guardrail_params}}
            return await gateway({"guardrails": [guardrail]},
                                 plugins=[("plugin-under-test", self.plugin)])
        return start

    @staticmethod
    async def _call(client, caplog) -> tuple[int, str]:
        with caplog.at_level("DEBUG"):
            resp = await client.post("/v1/chat/completions", json={
                "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})
            return resp.status, await resp.text()

    async def test_fail_closed_refuses_the_call_without_leaking_the_key(
            self, start, fake_upstream, caplog, mode, outage):
        status, text = await self._call(await start(mode, outage, "fail_closed"), caplog)
        assert status == (504 if outage == "timeout" else 502), text
        error = orjson.loads(text)["error"]
        assert error["type"] == "guardrail_error"
        # Named once: by the gateway, not again by the guardrail's own message.
        assert error["message"].count("under-test") == 1
        # And the service that failed, so an operator knows whom to call.
        vendor = load_plugins([("plugin-under-test", self.plugin)], load=()).guardrail_type(
            self.guardrail_type).obj.vendor
        assert vendor, "set Guardrail.vendor to the service's name"
        assert vendor in error["message"] and vendor in caplog.text
        assert _UNCHECKED_REPLY not in text
        if mode == "pre_call":
            assert fake_upstream.received == [], "a refused call must not reach the upstream"
        assert self.api_key not in text
        assert self.api_key not in caplog.text

    async def test_fail_open_lets_the_call_through_with_a_warning(
            self, start, fake_upstream, caplog, mode, outage):
        status, text = await self._call(await start(mode, outage, "fail_open"), caplog)
        assert status == 200, text
        assert len(fake_upstream.received) == 1
        assert _UNCHECKED_REPLY in text
        assert [r.levelname for r in caplog.records
                if "'under-test' failed open" in r.getMessage()] == ["WARNING"]
        assert self.api_key not in text
        assert self.api_key not in caplog.text
