"""How the presidio guardrail is configured: where Presidio is, and what a mistake says."""

from __future__ import annotations

import gatehouse_presidio
import pytest
from gatehouse.config import ConfigError


def chat(content: str) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}


async def start(gateway, **params):
    return await gateway({"guardrails": [{"guardrail_name": "pii", "litellm_params": {
        "guardrail": "presidio", "default_on": True, **params}}]},
        plugins=[("presidio", gatehouse_presidio)])


async def test_the_services_come_from_the_environment_with_a_scheme_added(
        gateway, presidio, fake_upstream, monkeypatch):
    monkeypatch.setenv("PRESIDIO_ANALYZER_API_BASE", presidio.url.removeprefix("http://"))
    monkeypatch.setenv("PRESIDIO_ANONYMIZER_API_BASE", presidio.url + "/")
    client = await start(gateway)
    resp = await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert resp.status == 200, await resp.text()
    assert presidio.paths == ["/analyze", "/anonymize"]
    assert fake_upstream.last["messages"][0]["content"] == "I am <PERSON>"


async def test_a_base_with_a_path_keeps_it(gateway, presidio, fake_upstream):
    client = await start(gateway, presidio_analyzer_api_base=presidio.url + "/pii/analyzer",
                         presidio_anonymizer_api_base=presidio.url + "/pii/anonymizer/")
    await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert presidio.paths == ["/pii/analyzer/analyze", "/pii/anonymizer/anonymize"]


@pytest.mark.parametrize(("given", "missing"), [
    ({}, "PRESIDIO_ANALYZER_API_BASE"),
    ({"presidio_analyzer_api_base": "http://analyzer:5002"}, "PRESIDIO_ANONYMIZER_API_BASE"),
])
async def test_a_missing_service_stops_the_start(gateway, given, missing):
    with pytest.raises(ConfigError, match=f"Missing `{missing}` from environment"):
        await start(gateway, **given)


@pytest.mark.parametrize(("param", "value", "problem"), [
    ("pii_entities_config", {"CREDIT_CARD": "REDACT"}, "'MASK' or 'BLOCK'"),
    ("presidio_score_thresholds", {"ALL": 7}, "a score threshold is between 0 and 1: ALL"),
    ("presidio_filter_scope", "reply", "'input', 'output' or 'both'"),
    ("presidio_ad_hoc_recognizers", "./nowhere.json", "File not found. file_path=./nowhere.json"),
])
async def test_a_mistake_stops_the_start_naming_it(gateway, presidio_params, param, value,
                                                   problem):
    with pytest.raises(ConfigError, match=param) as refused:
        await start(gateway, **presidio_params, **{param: value})
    assert problem in str(refused.value)


async def test_a_recognizer_file_must_hold_a_list(gateway, presidio_params, tmp_path):
    (tmp_path / "bad.json").write_text('{"name": "Zip"}')
    with pytest.raises(ConfigError, match="must hold a JSON array of recognizers"):
        await start(gateway, **presidio_params, presidio_ad_hoc_recognizers="./bad.json")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ConfigError, match="bad.json is not JSON"):
        await start(gateway, **presidio_params, presidio_ad_hoc_recognizers="./bad.json")
