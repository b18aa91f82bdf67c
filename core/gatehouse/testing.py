"""Test doubles and pytest fixtures for Gatehouse and for plugin authors.

A pytest plugin that a project turns on (``addopts = "-p gatehouse.testing"`` in its pytest
settings); installing the gateway alone changes no project's pytest. It gives these fixtures:

* ``fake_upstream`` -- a real HTTP server speaking the OpenAI wire format. It records every
  request it receives (``.received``), answers chat, completions (JSON or SSE) and embeddings,
  and can be told to fail, stall or answer with given text.
* ``fake_vendor`` -- a factory serving :class:`FakeVendor`, a guardrail vendor's API that
  records what it gets and answers, fails or stalls as told.
* ``gateway`` -- a factory: ``await gateway(config_dict, plugins=[...])`` starts the gateway
  over real HTTP with the ``fake_upstream`` as its ``gpt-4o`` model and returns an aiohttp test
  client for it (``client.app[GATEWAY]`` is the :class:`~gatehouse.gateway.Gateway`;
  ``GATEWAY`` is importable from here).

They need ``pytest-aiohttp`` (the ``gatehouse-proxy[test]`` extra).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Iterator

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from .app import GATEWAY, Runner, create_app
from .config import config_from_dict

__all__ = ["GATEWAY", "VENDOR_OUTAGES", "FakeUpstream", "FakeVendor", "GuardrailContract",
           "InstallContract", "OutageContract", "check_config"]

_PIECES = re.compile(r"\S+\s*|\s+")


class FakeUpstream:
    """An OpenAI-compatible upstream that does what a test tells it to."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reply = "Hello from the fake upstream."
        # When set, the reply text for each request body (overrides ``reply``).
        self.decide: Callable[[dict[str, Any]], str] | None = None
        self.chunks: list[str] | None = None  # explicit stream pieces; default: by word
        # Stream pieces of choices 1, 2, ... when a request asks for ``n`` > 1 (choice 0 has
        # ``chunks``); a choice without its own pieces repeats choice 0's.
        self.more_choices: list[list[str]] = []
        # Tool calls every chat choice makes instead of answering: (name, argument pieces).
        self.tool_calls: list[tuple[str, list[str]]] = []
        self.failure: tuple[int, bytes, str] | None = None
        # Sent with every answer, e.g. an upstream's x-ratelimit-* state or Retry-After.
        self.response_headers: dict[str, str] = {}
        self.delay = 0.0
        # Awaited after a request is recorded and before it is answered.
        self.before_reply: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.request_seen = asyncio.Event()
        self.url = ""  # set once served: base URL ending in /v1
        # Every reply gets its own id, as a real upstream's do.
        self._ids = itertools.count(1)
        self.app = web.Application()
        for path, kind in (("/v1/chat/completions", "chat"), ("/v1/completions", "text"),
                           ("/v1/embeddings", "embedding")):
            self.app.router.add_post(path, self._handler(kind))

    # -- what tests call ------------------------------------------------------------------------

    def fail(self, status: int, body: Any = None, *, content_type: str = "application/json"
             ) -> None:
        """Answer every request with ``status`` and ``body`` (a dict is sent as JSON)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body if body is not None else {
            "error": {"message": "upstream says no", "type": "server_error", "param": None,
                      "code": None}})
        self.failure = (status, raw, content_type)

    def model_entry(self, name: str = "gpt-4o", **params: Any) -> dict[str, Any]:
        """A ``model_list`` entry that routes ``name`` to this upstream."""
        return {"model_name": name, "params": {
            "model": f"openai/{name}", "api_base": self.url, "api_key": "sk-fake-upstream-key",
            **params}}

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    # -- serving --------------------------------------------------------------------------------

    def _handler(self, kind: str):
        async def handle(request: web.Request) -> web.StreamResponse:
            body = orjson.loads(await request.read())
            self.received.append(body)
            self.headers.append(dict(request.headers))
            self.request_seen.set()
            if self.before_reply is not None:
                await self.before_reply(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failure is not None:
                status, raw, content_type = self.failure
                return web.Response(status=status, body=raw, content_type=content_type,
                                    headers=self.response_headers)
            if kind == "embedding":
                return self._json(_embedding(body))
            text = self.decide(body) if self.decide is not None else self.reply
            reply_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-fake{next(self._ids)}"
            if body.get("stream"):
                return await self._stream(request, body, kind, text, reply_id)
            return self._json(self._completion(body, kind, text, reply_id))
        return handle

    def _json(self, body: dict[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers=self.response_headers)

    def _pieces(self, body: dict[str, Any], text: str) -> list[list[str]]:
        """Each choice's stream pieces, by choice index."""
        first = self.chunks if self.chunks is not None else _PIECES.findall(text)
        return [self.more_choices[i - 1] if 0 < i <= len(self.more_choices) else first
                for i in range(body.get("n") or 1)]

    def _completion(self, body: dict[str, Any], kind: str, text: str, reply_id: str
                    ) -> dict[str, Any]:
        reply = _completion(body, kind, text, reply_id)
        texts = ["".join(pieces) for pieces in self._pieces(body, text)]
        reply["choices"] = [{**reply["choices"][0], "index": i} for i in range(len(texts))]
        for choice, choice_text in zip(reply["choices"], texts):
            if kind == "text":
                choice["text"] = choice_text
            elif self.tool_calls:
                choice["finish_reason"] = "tool_calls"
                choice["message"] = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function",
                     "function": {"name": name, "arguments": "".join(pieces)}}
                    for i, (name, pieces) in enumerate(self.tool_calls)]}
            else:
                choice["message"] = {"role": "assistant", "content": choice_text}
        return reply

    async def _stream(self, request: web.Request, body: dict[str, Any], kind: str, text: str,
                      reply_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream",
                                               **self.response_headers})
        await response.prepare(request)
        base = {"id": reply_id, "created": int(time.time()), "model": body["model"],
                "object": "chat.completion.chunk" if kind == "chat" else "text_completion"}
        # As OpenAI does: one choice per chunk, the choices' chunks interleaved.
        for choices in self._stream_choices(body, kind, text):
            for choice in choices:
                await response.write(b"data: " + orjson.dumps({**base, "choices": [choice]})
                                     + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"choices": [], "usage": _usage(text)}
            await response.write(b"data: " + orjson.dumps({**base, **usage}) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _stream_choices(self, body: dict[str, Any], kind: str, text: str
                        ) -> Iterator[list[dict[str, Any]]]:
        """The stream's choices, interleaved: the n-th item is every choice's n-th chunk."""
        per_choice = [list(self._choice_chunks(index, pieces, kind))
                      for index, pieces in enumerate(self._pieces(body, text))]
        for position in range(max(map(len, per_choice))):
            yield [chunks[position] for chunks in per_choice if position < len(chunks)]

    def _choice_chunks(self, index: int, pieces: list[str], kind: str
                       ) -> Iterator[dict[str, Any]]:
        if kind == "text":
            for piece in pieces:
                yield {"index": index, "text": piece, "finish_reason": None}
            yield {"index": index, "text": "", "finish_reason": "stop"}
            return
        if not self.tool_calls:
            for i, piece in enumerate(pieces):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                yield {"index": index, "delta": delta, "finish_reason": None}
            yield {"index": index, "delta": {}, "finish_reason": "stop"}
            return
        yield {"index": index, "delta": {"role": "assistant", "content": None},
               "finish_reason": None}
        for t, (name, argument_pieces) in enumerate(self.tool_calls):
            yield {"index": index, "delta": {"tool_calls": [{
                "index": t, "id": f"call_{t}", "type": "function",
                "function": {"name": name, "arguments": ""}}]},
                "finish_reason": None}
            for piece in argument_pieces:
                yield {"index": index, "delta": {"tool_calls": [{
                    "index": t, "function": {"arguments": piece}}]},
                    "finish_reason": None}
        yield {"index": index, "delta": {}, "finish_reason": "tool_calls"}


def _usage(text: str) -> dict[str, int]:
    return {"prompt_tokens": 5, "completion_tokens": len(text.split()),
            "total_tokens": 5 + len(text.split())}


def _completion(body: dict[str, Any], kind: str, text: str, reply_id: str) -> dict[str, Any]:
    usage = _usage(text)
    if kind == "text":
        return {"id": reply_id, "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "usage": usage,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop",
                             "logprobs": None}]}
    return {"id": reply_id, "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def _embedding(body: dict[str, Any]) -> dict[str, Any]:
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i in range(len(items))],
            "usage": {"prompt_tokens": len(items), "total_tokens": len(items)}}


#: The ways a vendor fails that every vendor guardrail must survive (see FakeVendor.break_as).
VENDOR_OUTAGES = ("http_500", "http_403", "refused", "timeout", "malformed_json")


def check_config(config: Path, *, load: str, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """Run ``gatehouse check-config`` as a user would, in a fresh process, with
    ``GATEHOUSE_LOAD_PLUGINS=load`` -- to prove an installed plugin is found (and that its
    types are unknown without it)."""
    return subprocess.run(
        [sys.executable, "-m", "gatehouse.cli", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {}), "GATEHOUSE_LOAD_PLUGINS": load})


class FakeVendor:
    """A guardrail vendor's HTTP API as a test wants it to behave, for any POST path.

    Records every request (``received`` bodies, ``paths``, lower-cased ``headers``) and answers
    ``decide(path, body)`` when set, else ``reply``; ``status`` sets the HTTP status, ``raw``
    sends bytes instead of JSON, ``stall`` holds requests until ``release`` is set (the fixture
    sets it at teardown), ``before_reply`` is awaited first.
    """

    def __init__(self, reply: Any = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.reply = reply if reply is not None else {}
        self.decide: Callable[[str, dict[str, Any]], Any] | None = None
        self.status = 200
        self.raw: bytes | None = None
        self.stall = False
        self.release = asyncio.Event()
        self.before_reply: Callable[[], Awaitable[None]] | None = None
        self.url = ""  # set once served: the base URL, without a trailing slash
        self.app = web.Application()
        self.app.router.add_post("/{path:.*}", self._handle)

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    def break_as(self, how: str) -> str:
        """Make the vendor fail one of the ways in :data:`VENDOR_OUTAGES`; returns the
        ``api_base`` a guardrail should be given (a closed port for ``refused``)."""
        if how.startswith("http_"):
            self.status = int(how.removeprefix("http_"))
            self.reply = {"error": "vendor says no"}
        elif how == "refused":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return f"http://127.0.0.1:{sock.getsockname()[1]}"
        elif how == "timeout":
            self.stall = True
        elif how == "malformed_json":
            self.raw = b'{"flagged": tr'
        else:
            raise ValueError(f"unknown outage {how!r}; one of {VENDOR_OUTAGES}")
        return self.url

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.received.append(body)
        self.paths.append(request.path)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.before_reply is not None:
            await self.before_reply()
        if self.stall:
            await self.release.wait()
        raw = self.raw if self.raw is not None else orjson.dumps(
            self.decide(request.path, body) if self.decide is not None else self.reply)
        return web.Response(body=raw, status=self.status, content_type="application/json")


@pytest_asyncio.fixture
async def fake_vendor(aiohttp_server):
    """Factory: ``vendor = await fake_vendor(reply={...})`` serves a :class:`FakeVendor`."""
    served: list[FakeVendor] = []

    async def make(reply: Any = None) -> FakeVendor:
        vendor = FakeVendor(reply)
        server = await aiohttp_server(vendor.app)
        vendor.url = str(server.make_url("")).rstrip("/")
        served.append(vendor)
        return vendor

    yield make
    for vendor in served:
        vendor.release.set()  # a stalled handler must finish for its server to close


@pytest_asyncio.fixture
async def fake_upstream(aiohttp_server) -> FakeUpstream:
    fake = FakeUpstream()
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/v1"))
    return fake


@pytest.fixture
def gateway(aiohttp_client, fake_upstream, tmp_path):
    """Factory: ``await gateway(config, plugins=[(name, module_or_obj)], load=None)``.

    ``config`` is a config.yaml as a dict; without ``model_list`` the gateway gets the fake
    upstream as ``gpt-4o`` and ``mock/echo`` as ``mock-echo``. ``load`` limits the installed
    plugins that load (default: only the core's own), ``plugins`` adds uninstalled ones.
    """

    async def make(config: dict[str, Any] | None = None, *,
                   plugins: Iterable[tuple[str, Any]] = (),
                   load: Iterable[str] | None = (), base_dir: Path | None = None):
        config = dict(config or {})
        config.setdefault("model_list", [
            fake_upstream.model_entry("gpt-4o"),
            {"model_name": "mock-echo", "params": {"model": "mock/echo"}},
        ])
        app = create_app(config_from_dict(config, base_dir=base_dir or tmp_path),
                         extra_plugins=plugins, load=load)
        return await aiohttp_client(_Served(app))

    return make


class _Served(TestServer):
    """The app served as ``gatehouse run`` serves it."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return Runner(self.app, **kwargs)


class GuardrailContract:
    """What every guardrail type owes its users, as tests any plugin can inherit.

    Subclass it as ``class TestMyGuardrailContract(GuardrailContract)`` and set:

    * ``plugin`` -- the plugin module (or object) that registers the type;
    * ``guardrail_type`` -- the type name;
    * ``modes`` -- the modes the type supports;
    * ``blocked_text`` -- a user message the guardrail refuses in ``pre_call`` (or None);
    * ``blocked_reply`` -- an upstream reply it refuses in ``post_call`` (or None);
    * ``rewritten_text`` -- a user message it rewrites rather than refuses (or None).

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
        from .guardrails.base import Guardrail
        from .plugins import load_plugins
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
        from .config import ConfigError
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
    * ``env`` -- what the configs' ``os.environ/`` references need.

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

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
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
        from importlib.metadata import entry_points

        from .plugins import ENTRY_POINT_GROUP
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


_UNCHECKED_REPLY = "An upstream reply no guardrail has checked."


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
    a broken ``api_base``, ``timeout`` and ``on_error``; more params a working instance needs
    come from the ``guardrail_params`` fixture.
    """

    plugin: Any = None
    guardrail_type: str = ""
    modes: tuple[str, ...] = ("pre_call",)
    extra_outages: tuple[str, ...] = ()
    api_key: str = "vendor-key-never-shown-4242"

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
                "api_key": self.api_key, "api_base": api_base, "timeout": 0.3,
                "on_error": on_error, **guardrail_params}}
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
