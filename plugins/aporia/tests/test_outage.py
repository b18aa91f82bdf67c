"""When Aporia cannot give a verdict: the guardrail's on_error decides, the error names the
guardrail, and the API key shows up neither in the client's error nor in the logs."""

from __future__ import annotations

import logging

import pytest
from gatehouse.testing import VENDOR_OUTAGES

# The kit's outages, and Aporia's own: an answer with an action it does not define.
FAILURES = [*VENDOR_OUTAGES, "unknown_action"]


@pytest.fixture
def broken_aporia(aporia):
    """Make the fake fail one way; returns the api_base the gateway should use."""

    def breaking(how: str) -> str:
        if how == "unknown_action":
            aporia.reply = {"action": "allow-everything"}
            return aporia.url
        return aporia.break_as(how)

    return breaking


@pytest.mark.parametrize("how", FAILURES)
@pytest.mark.parametrize("mode", ["pre_call", "post_call"])
async def test_fail_closed_refuses_the_call_without_leaking_the_key(
        broken_aporia, aporia_gateway, chat, fake_upstream, caplog, how, mode):
    api_base = broken_aporia(how)
    fake_upstream.reply = "an unchecked reply"
    client = await aporia_gateway(mode=mode, api_base=api_base, timeout=0.3)
    with caplog.at_level(logging.DEBUG):
        resp = await chat(client, "hello")
        text = await resp.text()

    assert resp.status == (504 if how == "timeout" else 502)
    body = await resp.json()
    assert body["error"]["type"] == "guardrail_error"
    # Named once: by the gateway, not again by the guardrail's own message.
    assert body["error"]["message"].count("aporia-guard") == 1
    assert "an unchecked reply" not in text
    key = "ap-test-secret-1717"
    assert key not in text
    assert key not in caplog.text


@pytest.mark.parametrize("how", FAILURES)
async def test_fail_open_lets_the_call_through(broken_aporia, aporia_gateway, chat,
                                               fake_upstream, caplog, how):
    api_base = broken_aporia(how)
    client = await aporia_gateway(api_base=api_base, timeout=0.3, on_error="fail_open")
    with caplog.at_level(logging.WARNING):
        resp = await chat(client, "hello")

    assert resp.status == 200
    assert len(fake_upstream.received) == 1
    assert "'aporia-guard' failed open" in caplog.text
    assert "ap-test-secret-1717" not in caplog.text
