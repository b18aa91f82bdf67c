"""Latency budgets (``latency_budget_ms``): a guardrail past its budget gives up
(``fail_open``), fails the call (``fail_closed``), or lets the call go on and finishes its check
off the request path (``demote``), whose verdict is recorded -- a block as an alert in the
log, the metrics and the callbacks' record. The time each guardrail added shows in metrics."""

import logging

import pytest
from admin_kit import ADMIN, admin_get, both_backends, settle

from doubles import PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY


async def slow_vendor(fake_vendor, reply):
    """A vendor that answers ``reply`` once the test lets it (``vendor.release``)."""
    vendor = await fake_vendor(reply)
    vendor.stall = True
    return vendor


async def start(gateway, *guardrails):
    return await gateway({"guardrails": list(guardrails),
                          "litellm_settings": {"callbacks": ["prometheus"]}}, plugins=PLUGINS)


async def entry_of(client, name):
    await client.app[GATEWAY].call_log.drain()
    [record] = RECORDS
    [entry] = [e for e in record["guardrail_information"] if e["guardrail_name"] == name]
    return entry


async def scrape(client):
    return await (await client.get("/metrics")).text()


async def test_fail_open_lets_the_call_go_on_without_the_check(gateway, chat, fake_vendor,
                                                               fake_upstream):
    vendor = await slow_vendor(fake_vendor, {"flagged": True})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="fail_open"))
    resp = await client.post("/v1/chat/completions", json=chat("a bomb"))
    assert resp.status == 200
    entry = await entry_of(client, "check")
    assert entry["guardrail_status"] == "guardrail_failed_to_respond"
    assert entry["status_reason"] == "no verdict within its latency budget of 50ms"
    assert entry["latency_budget"] == "fail_open"
    assert ('gatehouse_guardrail_budget_exceeded_total{action="fail_open",'
            'guardrail_name="check",hook_type="pre_call"} 1.0') in await scrape(client)


async def test_fail_closed_fails_the_call(gateway, chat, fake_vendor, fake_upstream):
    vendor = await slow_vendor(fake_vendor, {})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="fail_closed", on_error="fail_open"))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 504
    assert "latency budget of 50ms" in (await resp.json())["error"]["message"]
    assert fake_upstream.received == []


async def test_without_on_budget_exceeded_the_budget_follows_on_error(gateway, chat,
                                                                      fake_vendor):
    vendor = await slow_vendor(fake_vendor, {})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50))
    assert (await client.post("/v1/chat/completions", json=chat("hello"))).status == 504


async def test_demote_finishes_the_check_off_the_request_path_and_alerts_on_a_block(
        gateway, chat, fake_vendor, fake_upstream, caplog):
    vendor = await slow_vendor(fake_vendor, {"flagged": True})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="demote"))
    with caplog.at_level(logging.WARNING, "gatehouse.guardrails"):
        resp = await client.post("/v1/chat/completions", json=chat("a bomb"))
        assert resp.status == 200
        assert fake_upstream.last["messages"][0]["content"] == "a bomb"
        vendor.release.set()
        entry = await entry_of(client, "check")
    assert entry["guardrail_status"] == "would_have_intervened"
    assert entry["status_reason"] == "Check flagged it"
    assert entry["latency_budget"] == "demote"
    assert any("ALERT: guardrail 'check' would have blocked" in r.getMessage()
               for r in caplog.records)
    metrics = await scrape(client)
    assert ('litellm_guardrail_requests_total{error_type="",guardrail_name="check",'
            'hook_type="pre_call",status="would_have_intervened"} 1.0') in metrics
    assert ('gatehouse_guardrail_budget_exceeded_total{action="demote",'
            'guardrail_name="check",hook_type="pre_call"} 1.0') in metrics


async def test_a_demoted_rewrite_never_reaches_the_upstream(gateway, chat, fake_vendor,
                                                           fake_upstream):
    vendor = await slow_vendor(fake_vendor, {"mask": "secret"})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="demote"))
    resp = await client.post("/v1/chat/completions", json=chat("my secret"))
    assert resp.status == 200
    vendor.release.set()
    entry = await entry_of(client, "check")
    assert entry["guardrail_status"] == "would_have_intervened"
    assert fake_upstream.last["messages"][0]["content"] == "my secret"


async def test_within_its_budget_a_demotable_check_enforces(gateway, chat, fake_vendor,
                                                            fake_upstream):
    vendor = await fake_vendor({"mask": "secret"})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=10_000, on_budget_exceeded="demote"))
    resp = await client.post("/v1/chat/completions", json=chat("my secret"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "my ****"
    vendor.reply = {"flagged": True}
    assert (await client.post("/v1/chat/completions", json=chat("x"))).status == 400


async def test_the_added_latency_of_each_guardrail_is_a_metric(gateway, chat, fake_vendor):
    vendor = await slow_vendor(fake_vendor, {})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="demote"))
    assert (await client.post("/v1/chat/completions", json=chat("hi"))).status == 200
    vendor.release.set()
    await entry_of(client, "check")
    # The call was held for the budget, not for the whole check.
    assert ('gatehouse_guardrail_added_latency_seconds_sum{guardrail_name="check",'
            'hook_type="pre_call"} 0.05') in await scrape(client)


async def test_a_shadow_of_a_demoted_check_is_compared_with_its_late_verdict(
        gateway, chat, fake_vendor):
    vendor = await slow_vendor(fake_vendor, {"flagged": True})
    client = await start(gateway, guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="demote"),
        guardrail("candidate", block_word="bomb", shadow_of="check"))
    assert (await client.post("/v1/chat/completions", json=chat("a bomb"))).status == 200
    vendor.release.set()
    shadow = await entry_of(client, "candidate")
    assert (shadow["verdict"], shadow["target_verdict"], shadow["verdicts_differ"]) == (
        "blocked", "blocked", False)


@pytest.mark.parametrize("name,mode,params,delay", [
    # Logging hooks run on the call's record, off the request path.
    ("masker", "logging_only", {"mask": "hello"}, 0.0),
    # A during_call check runs alongside the upstream call: only what it takes past the reply
    # holds the call up.
    ("alongside", "during_call", {}, 0.2),
])
async def test_a_check_off_the_request_path_adds_no_latency(gateway, chat, fake_upstream, name,
                                                            mode, params, delay):
    fake_upstream.delay = delay
    client = await start(gateway, guardrail(name, mode=mode, default_on=True, **params))
    assert (await client.post("/v1/chat/completions", json=chat("hello"))).status == 200
    await client.app[GATEWAY].call_log.drain()
    metrics = await scrape(client)
    series = f'{{guardrail_name="{name}",hook_type="{mode}"}}'
    lines = metrics.splitlines()
    assert f"gatehouse_guardrail_added_latency_seconds_count{series} 1.0" in lines
    assert f"gatehouse_guardrail_added_latency_seconds_sum{series} 0.0" in lines


@both_backends
async def test_a_demoted_checks_late_verdict_is_kept_in_the_calls_spend_row(
        start, chat, fake_vendor):
    vendor = await slow_vendor(fake_vendor, {"flagged": True})
    client = await start({"guardrails": [guardrail(
        "check", type_="vendor_check", vendor=vendor.url, default_on=True,
        latency_budget_ms=50, on_budget_exceeded="demote")]}, plugins=PLUGINS)
    resp = await client.post("/v1/chat/completions", json=chat("a bomb"), headers=ADMIN)
    assert resp.status == 200
    vendor.release.set()
    await settle(client)
    shown = await admin_get(client, f"/spend/logs/ui/{resp.headers['x-request-id']}")
    [entry] = shown["metadata"]["guardrail_information"]
    assert (entry["guardrail_name"], entry["guardrail_status"], entry["status_reason"],
            entry["latency_budget"]) == (
        "check", "would_have_intervened", "Check flagged it", "demote")
