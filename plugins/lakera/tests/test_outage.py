"""When Lakera cannot give a verdict: the guardrail's on_error decides, the error names the
guardrail, and the API key shows up neither in the client's error nor in the logs."""

from __future__ import annotations

import logging

import pytest
from gatehouse.testing import VENDOR_OUTAGES

# The kit's outages, and Lakera's own: 401, its answer to a bad key, and a reply without a
# verdict it can read.
FAILURES = [*VENDOR_OUTAGES, "http_401", "no_verdict"]


@pytest.fixture
def broken_lakera(lakera):
    """Make the fake fail one way; returns the api_base the gateway should use."""

    def breaking(how: str) -> str:
        if how == "no_verdict":
            lakera.reply = {"flagged": "no", "payload": []}
            return lakera.url
        return lakera.break_as(how)

    return breaking


@pytest.mark.parametrize("how", FAILURES)
@pytest.mark.parametrize("guardrail", ["lakera", "lakera_v1"])
async def test_fail_closed_refuses_the_call_without_leaking_the_key(
        broken_lakera, lakera_gateway, chat, fake_upstream, caplog, how, guardrail):
    api_base = broken_lakera(how)
    client = await lakera_gateway(guardrail=guardrail, api_base=api_base, timeout=0.3)
    with caplog.at_level(logging.DEBUG):
        resp = await chat(client, "hello")
        text = await resp.text()

    assert resp.status == (504 if how == "timeout" else 502)
    body = await resp.json()
    assert body["error"]["type"] == "guardrail_error"
    # Named once: by the gateway, not again by the guardrail's own message.
    assert body["error"]["message"].count("lakera-guard") == 1
    assert fake_upstream.received == []
    key = "lk-test-secret-4242"
    assert key not in text
    assert key not in caplog.text


@pytest.mark.parametrize("how", FAILURES)
async def test_fail_open_lets_the_call_through(broken_lakera, lakera_gateway, chat,
                                               fake_upstream, caplog, how):
    api_base = broken_lakera(how)
    client = await lakera_gateway(api_base=api_base, timeout=0.3, on_error="fail_open")
    with caplog.at_level(logging.WARNING):
        resp = await chat(client, "hello")

    assert resp.status == 200
    assert len(fake_upstream.received) == 1
    assert "'lakera-guard' failed open" in caplog.text
    assert "lk-test-secret-4242" not in caplog.text
