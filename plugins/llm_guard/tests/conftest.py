"""A fake LLM Guard API server, answering as the real one does."""

from __future__ import annotations

from typing import Any

import pytest_asyncio


def analysis(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """LLM Guard's answer: text holding "forbidden" is not valid."""
    if path.endswith("/analyze/output"):
        valid = "forbidden" not in body["output"]
        return {"sanitized_output": body["output"], "is_valid": valid,
                "scanners": {"Toxicity": 0.0 if valid else 1.0}}
    valid = "forbidden" not in body["prompt"]
    return {"sanitized_prompt": body["prompt"], "is_valid": valid,
            "scanners": {"Regex": 0.0 if valid else 1.0}}


@pytest_asyncio.fixture
async def llm_guard(fake_vendor):
    """The core's FakeVendor as LLM Guard, judging text holding "forbidden" not valid."""
    fake = await fake_vendor()
    fake.decide = analysis
    return fake

