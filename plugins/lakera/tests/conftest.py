"""A fake Lakera Guard that speaks the v2 and v1 wire formats, and a gateway wired to it."""

from __future__ import annotations

from typing import Any

import gatehouse_lakera
import pytest
import pytest_asyncio

API_KEY = "lk-test-secret-4242"

# What the fake answers each API when a test sets no reply: a clean verdict in its format.
CLEAN = {
    "/v2/guard": {"flagged": False, "payload": [], "breakdown": [], "dev_info": {"version": "2"}},
    "/v1/prompt_injection": {"model": "lakera-guard-1", "dev_info": {"version": "1"}, "results": [{
        "categories": {"prompt_injection": False, "jailbreak": False},
        "category_scores": {"prompt_injection": 0.0, "jailbreak": 0.0},
        "flagged": False, "payload": {}}]},
}


@pytest_asyncio.fixture
async def lakera(fake_vendor):
    """The core's FakeVendor as Lakera: answers ``reply`` once a test sets one, else the clean
    verdict of the API asked; a test's own ``decide(path, body)`` overrides both."""
    fake = await fake_vendor()
    fake.reply = None
    fake.decide = lambda path, body: CLEAN[path] if fake.reply is None else fake.reply
    fake.api_key = API_KEY  # what the gateway is configured with
    return fake


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
