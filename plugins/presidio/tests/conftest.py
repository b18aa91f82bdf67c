"""A fake Presidio: an analyzer that finds entities with regexes and answers as Presidio's
``/analyze`` does, and an anonymizer that replaces each span with ``<ENTITY_TYPE>`` as
Presidio's default operator does. One server serves both routes; tests may serve two."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_presidio
import pytest
import pytest_asyncio

# What the fake's recognisers find, with the score Presidio's would give.
RECOGNISERS = {
    "EMAIL_ADDRESS": (re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+\w"), 1.0),
    "CREDIT_CARD": (re.compile(r"\b(?:\d[ -]?){15}\d\b"), 1.0),
    "PHONE_NUMBER": (re.compile(r"\b\d{3}-\d{3}-\d{4}\b"), 0.75),
    # Presidio finds people with a language model; the fake knows a few by name.
    "PERSON": (re.compile(r"\b(?:Jane Doe|John Smith|Ada Lovelace|Jane|John)\b"), 0.85),
    "DATE_TIME": (re.compile(r"\b(?:today|tomorrow|\d{4}-\d{2}-\d{2})\b"), 0.6),
}
LANGUAGES = ("en", "es", "de")


def analyze(body: dict[str, Any]) -> Any:
    """The analyzer's answer to ``POST /analyze``."""
    if body.get("language") not in LANGUAGES:
        return {"error": f"No matching recognizers were found to serve the request "
                         f"(language {body.get('language')!r})"}
    text = body["text"]
    wanted = body.get("entities")
    found = []
    recognisers = dict(RECOGNISERS)
    for recogniser in body.get("ad_hoc_recognizers") or ():
        for pattern in recogniser["patterns"]:
            recognisers[recogniser["supported_entity"]] = (re.compile(pattern["regex"]),
                                                           pattern["score"])
    for entity, (pattern, score) in recognisers.items():
        if wanted is not None and entity not in wanted:
            continue
        found += [{"entity_type": entity, "start": m.start(), "end": m.end(), "score": score,
                   "analysis_explanation": None,
                   "recognition_metadata": {"recognizer_name": f"Fake{entity}Recognizer"}}
                  for m in pattern.finditer(text)]
    return sorted(found, key=lambda d: d["start"])


def anonymize(body: dict[str, Any]) -> dict[str, Any]:
    """The anonymizer's answer to ``POST /anonymize`` with no ``anonymizers``: every span
    replaced by ``<ENTITY_TYPE>``. Items come last-first, as Presidio builds them."""
    text = body["text"]
    items = []
    for result in sorted(body["analyzer_results"], key=lambda r: r["start"], reverse=True):
        replacement = f"<{result['entity_type']}>"
        text = text[:result["start"]] + replacement + text[result["end"]:]
        items.append({"start": result["start"], "end": result["start"] + len(replacement),
                      "entity_type": result["entity_type"], "text": replacement,
                      "operator": "replace"})
    return {"text": text, "items": items}


def answer(path: str, body: dict[str, Any]) -> Any:
    return analyze(body) if path.endswith("/analyze") else anonymize(body)


@pytest_asyncio.fixture
async def presidio(fake_vendor):
    """The fake Presidio, analyzer and anonymizer on one server."""
    fake = await fake_vendor()
    fake.decide = answer
    return fake


@pytest.fixture
def presidio_params(presidio) -> dict[str, Any]:
    return {"presidio_analyzer_api_base": presidio.url,
            "presidio_anonymizer_api_base": presidio.url}


@pytest.fixture
def presidio_gateway(gateway, presidio_params):
    """``await presidio_gateway(mode=..., **params)``: a gateway whose guardrail ``pii`` (on for
    every call) uses the fake Presidio."""

    async def make(mode: Any = "pre_call", extra: dict[str, Any] | None = None, **params: Any):
        config = {**(extra or {}), "guardrails": [{
            "guardrail_name": "pii", "litellm_params": {
                "guardrail": "presidio", "mode": mode, "default_on": True,
                **presidio_params, **params}}]}
        return await gateway(config, plugins=[("presidio", gatehouse_presidio)])

    return make

