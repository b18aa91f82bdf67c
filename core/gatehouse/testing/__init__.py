"""Test doubles and pytest fixtures for Gatehouse and for plugin authors.

A pytest plugin that a project turns on (``addopts = "-p gatehouse.testing"`` in its pytest
settings); installing the gateway alone changes no project's pytest. It gives these fixtures:

* ``fake_upstream`` -- a real HTTP server speaking the OpenAI wire format. It records every
  request it receives (``.received``), answers chat, completions (JSON or SSE) and embeddings,
  and can be told to fail, stall or answer with given text.
* ``fake_vendor`` -- a factory serving :class:`FakeVendor`, a guardrail vendor's API that
  records what it gets and answers, fails or stalls as told.
* ``send_chat`` -- ``await send_chat(client, "text" or [messages], headers=..., **extra)``
  posts a chat completion for the fake upstream's ``gpt-4o`` and returns the response.
* ``gateway`` -- a factory: ``await gateway(config_dict, plugins=[...])`` starts the gateway
  over real HTTP with the ``fake_upstream`` as its ``gpt-4o`` model and returns an aiohttp test
  client for it (``client.app[GATEWAY]`` is the :class:`~gatehouse.gateway.Gateway`;
  ``GATEWAY`` is importable from here).

* ``aws_env`` -- no AWS credentials, region or profile from the machine running the tests,
  so only what a test sets is used (the ``monkeypatch`` that set it up).
* ``aws_server`` -- moto's server playing AWS (KMS, Secrets Manager, STS, ...) on a free port
  of 127.0.0.1; its base URL. Its state is moto's, shared by the process.

They need ``pytest-aiohttp`` and, for ``aws_server``, ``moto[server]`` (both in the
``gatehouse-proxy[test]`` extra).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterable

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from ..app import GATEWAY, Runner, create_app
from ..config import config_from_dict
from .contracts import GuardrailContract, InstallContract, OutageContract, check_config
from .doubles import VENDOR_OUTAGES, FakeUpstream, FakeVendor

__all__ = ["GATEWAY", "VENDOR_OUTAGES", "FakeUpstream", "FakeVendor", "GuardrailContract",
           "InstallContract", "OutageContract", "check_config"]


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


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_REGION_NAME",
                 "AWS_DEFAULT_REGION", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def aws_server():
    from moto.server import ThreadedMotoServer  # only the tests that use it need moto

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def send_chat():
    """``await send_chat(client, "text" or [messages], headers=None, **extra)``: a chat
    completion on ``gpt-4o`` (one user message for a string), ``extra`` added to the body
    (``stream``, ``guardrails``, ``metadata``, ...); returns the aiohttp response."""

    async def send(client: Any, messages: str | list[dict[str, Any]],
                   headers: dict[str, str] | None = None, **extra: Any) -> Any:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return await client.post("/v1/chat/completions", headers=headers,
                                 json={"model": "gpt-4o", "messages": messages, **extra})

    return send
