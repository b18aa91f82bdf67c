"""A fake OpenAI ``/moderations`` endpoint, answering as the real one does, and a gateway
wired to it."""

from __future__ import annotations

from typing import Any

import gatehouse_openai_moderation
import pytest
import pytest_asyncio

API_KEY = "sk-moderation-test-5151"
CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")


def moderation(flagged: dict[str, float] | None = None, *,
               model: str = "omni-moderation-latest") -> dict[str, Any]:
    """A ``/moderations`` answer for one input; ``flagged`` maps each flagged category to its
    score (the others score 0.01)."""
    flagged = flagged or {}
    return {"id": "modr-fake", "model": model, "results": [{
        "flagged": bool(flagged),
        "categories": {name: name in flagged for name in CATEGORIES},
        "category_scores": {name: flagged.get(name, 0.01) for name in CATEGORIES},
    }]}


@pytest_asyncio.fixture
async def openai_api(fake_vendor):
    """The core's FakeVendor as OpenAI: answers a clean moderation until a test sets
    ``reply`` or ``decide(path, body)``."""
    fake = await fake_vendor(reply=moderation())
    fake.api_key = API_KEY  # what the gateway is configured with
    fake.answer = moderation  # builds answers: fake.answer({"hate": 0.9})
    return fake


@pytest.fixture
def moderated(gateway, openai_api):
    """``await moderated(mode=..., **params)``: a gateway with one ``openai_moderation``
    guardrail ``openai-moderation`` (on for every call) talking to the fake."""

    async def make(mode: Any = "pre_call", **params: Any):
        config = {"guardrails": [{"guardrail_name": "openai-moderation", "litellm_params": {
            "guardrail": "openai_moderation", "mode": mode, "api_key": API_KEY,
            "api_base": openai_api.url + "/v1", "default_on": True, **params}}]}
        return await gateway(config, plugins=[("openai_moderation", gatehouse_openai_moderation)])

    return make

