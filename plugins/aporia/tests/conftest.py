"""A fake Aporia that speaks the /validate wire format, and a gateway wired to it."""

from __future__ import annotations

from typing import Any

import gatehouse_aporia
import pytest
import pytest_asyncio

API_KEY = "ap-test-secret-1717"
PASSTHROUGH = {"action": "passthrough", "revised_prompt": None, "revised_response": None,
               "explain_log": None}


@pytest_asyncio.fixture
async def aporia(fake_vendor):
    """The core's FakeVendor as Aporia: answers passthrough until a test sets ``reply`` or
    ``decide(path, body)``."""
    fake = await fake_vendor(reply=PASSTHROUGH)
    fake.api_key = API_KEY  # what the gateway is configured with
    return fake


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
