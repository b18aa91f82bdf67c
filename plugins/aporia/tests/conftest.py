"""A fake Aporia that speaks the /validate wire format, and a gateway wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import gatehouse_aporia
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

API_KEY = "ap-test-secret-1717"
PASSTHROUGH = {"action": "passthrough", "revised_prompt": None, "revised_response": None,
               "explain_log": None}


class FakeAporia:
    """Records every request; answers ``decide(request body)`` when set, else ``reply`` (or,
    when set, ``status`` / ``raw`` bytes, or holds the request until ``release`` is set when
    ``stall`` is true)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reply: dict[str, Any] = PASSTHROUGH
        self.decide: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.status = 200
        self.raw: bytes | None = None
        self.stall = False
        self.release = asyncio.Event()
        self.before_reply: Callable[[], Awaitable[None]] | None = None
        self.url = ""
        self.api_key = API_KEY  # what the gateway is configured with
        self.app = web.Application()
        self.app.router.add_post("/validate", self._handle)

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    async def _handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.received.append(body)
        self.headers.append(dict(request.headers))
        if self.before_reply is not None:
            await self.before_reply()
        if self.stall:
            await self.release.wait()
        raw = self.raw if self.raw is not None else orjson.dumps(
            self.decide(body) if self.decide is not None else self.reply)
        return web.Response(body=raw, status=self.status, content_type="application/json")


@pytest_asyncio.fixture
async def aporia(aiohttp_server):
    fake = FakeAporia()
    server = await aiohttp_server(fake.app)
    fake.url = f"http://{server.host}:{server.port}"
    yield fake
    fake.release.set()  # lets a stalled handler finish so the server can close


@pytest.fixture
def aporia_gateway(gateway, aporia):
    """``await aporia_gateway(mode=..., **params)``: a gateway with one guardrail
    ``aporia-guard`` (on for every call) talking to the fake."""

    async def make(mode: Any = "pre_call", **params: Any):
        config = {"guardrails": [{"guardrail_name": "aporia-guard", "litellm_params": {
            "guardrail": "aporia", "mode": mode, "api_key": API_KEY, "api_base": aporia.url,
            "default_on": True, **params}}]}
        return await gateway(config, plugins=[("aporia", gatehouse_aporia)])

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
