from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

import gatehouse_llamaguard
from gatehouse.testing import FakeUpstream


@pytest_asyncio.fixture
async def guard_model(aiohttp_server) -> FakeUpstream:
    """The Llama Guard deployment: a second fake upstream, judging everything safe until told
    otherwise."""
    fake = FakeUpstream()
    fake.reply = "safe"
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("/v1"))
    return fake


@pytest.fixture
def model_list(fake_upstream: FakeUpstream, guard_model: FakeUpstream) -> list[dict[str, Any]]:
    return [fake_upstream.model_entry("gpt-4o"), guard_model.model_entry("llama-guard")]


@pytest.fixture
def start(gateway, model_list):
    """Start a gateway with one ``llamaguard`` guardrail named ``content-safety`` that is on for
    every call; keyword arguments are its params."""

    async def make(**params: Any) -> TestClient:
        config = {"model_list": model_list, "guardrails": [{
            "guardrail_name": "content-safety",
            "params": {"guardrail": "llamaguard", "default_on": True,
                       "llamaguard_model_name": "llama-guard", **params}}]}
        return await gateway(config, plugins=[("llamaguard", gatehouse_llamaguard)])

    return make

