"""A fake Lakera Guard that speaks the v2 and v1 wire formats, and a gateway wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import gatehouse_lakera
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

API_KEY = "lk-test-secret-4242"

CLEAN_V2 = {"flagged": False, "payload": [], "breakdown": [], "dev_info": {"version": "2"}}
CLEAN_V1 = {"model": "lakera-guard-1", "dev_info": {"version": "1"}, "results": [{
    "categories": {"prompt_injection": False, "jailbreak": False},
    "category_scores": {"prompt_injection": 0.0, "jailbreak": 0.0},
    "flagged": False, "payload": {}}]}


class FakeLakera:
    """Records every request; answers ``decide(request body)`` when set, else ``reply`` (or,
    when set, ``status`` / ``raw`` bytes, or holds the request until ``release`` is set when
    ``stall`` is true)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.reply: dict[str, Any] | None = None
        self.decide: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.status = 200
        self.raw: bytes | None = None
        self.stall = False
        self.release = asyncio.Event()
        self.before_reply: Callable[[], Awaitable[None]] | None = None
        self.url = ""
        self.api_key = API_KEY  # what the gateway is configured with
        self.app = web.Application()
        self.app.router.add_post("/v2/guard", self._handle)
        self.app.router.add_post("/v1/prompt_injection", self._handle)

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.received.append(body)
        self.paths.append(request.path)
        self.headers.append(dict(request.headers))
        if self.before_reply is not None:
            await self.before_reply()
        if self.stall:
            await self.release.wait()
        if self.raw is not None:
            return web.Response(body=self.raw, status=self.status,
                                content_type="application/json")
        reply = self.decide(body) if self.decide is not None else self.reply
        if reply is None:
            reply = CLEAN_V2 if request.path == "/v2/guard" else CLEAN_V1
        return web.Response(body=orjson.dumps(reply), status=self.status,
                            content_type="application/json")


@pytest_asyncio.fixture
async def lakera(aiohttp_server):
    fake = FakeLakera()
    server = await aiohttp_server(fake.app)
    fake.url = f"http://{server.host}:{server.port}"
    yield fake
    fake.release.set()  # lets a stalled handler finish so the server can close


@pytest.fixture
def lakera_gateway(gateway, lakera):
    """``await lakera_gateway(mode=..., **params)``: a gateway with one guardrail
    ``lakera-guard`` (default type ``lakera``, on for every call) talking to the fake."""

    async def make(guardrail: str = "lakera", mode: Any = "pre_call", **params: Any):
        config = {"guardrails": [{"guardrail_name": "lakera-guard", "litellm_params": {
            "guardrail": guardrail, "mode": mode, "api_key": API_KEY, "api_base": lakera.url,
            "default_on": True, **params}}]}
        return await gateway(config, plugins=[("lakera", gatehouse_lakera)])

    return make


@pytest.fixture
def chat():
    """``await chat(client, "text" or [messages], **extra)`` -> aiohttp response."""

    async def send(client, messages: str | list[dict[str, Any]], **extra: Any):
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return await client.post("/v1/chat/completions",
                                 json={"model": "gpt-4o", "messages": messages, **extra})

    return send
