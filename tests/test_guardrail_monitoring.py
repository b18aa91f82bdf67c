"""Every guardrail selected for a call leaves a ``guardrail_information`` entry: what it
decided, how long it took, what it masked, the vendor's answer without credentials -- and
``not_run``, with the reason, when the call never reached it. Callbacks and spend rows get it."""

import pytest
from admin_kit import ADMIN, admin_get, both_databases

from doubles import PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY


async def start(gateway, *guardrails, **config):
    return await gateway({"guardrails": list(guardrails), **config}, plugins=PLUGINS)


async def record_of(client):
    await client.app[GATEWAY].call_log.drain()
    [record] = RECORDS
    return record


def by_name(record):
    return {(e["guardrail_name"], e["guardrail_mode"]): e
            for e in record["guardrail_information"]}


async def test_a_guardrail_that_passes_is_logged_as_success_with_its_timing(gateway, chat):
    client = await start(gateway, guardrail("checker", mode=["pre_call", "post_call"],
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    record = await record_of(client)
    entries = record["guardrail_information"]
    assert [(e["guardrail_name"], e["guardrail_provider"], e["guardrail_mode"],
             e["guardrail_status"]) for e in entries] == [
        ("checker", "probe", "pre_call", "success"), ("checker", "probe", "post_call", "success")]
    for entry in entries:
        assert entry["start_time"] <= entry["end_time"]
        assert entry["duration"] >= 0
        assert entry["masked_entity_count"] == {}
        assert entry["status_reason"] is None


async def test_a_block_intervenes_and_the_guardrails_after_it_say_not_run(gateway, chat):
    client = await start(gateway, guardrail("blocker", block_word="plan", default_on=True),
                         guardrail("later", default_on=True),
                         guardrail("reader", mode="post_call", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("a secret plan"))
    assert resp.status == 400
    record = await record_of(client)
    assert record["outcome"] == "failure"
    entries = by_name(record)
    blocker = entries["blocker", "pre_call"]
    assert blocker["guardrail_status"] == "guardrail_intervened"
    assert blocker["status_reason"] == "Probe blocker saw plan"
    for key in (("later", "pre_call"), ("reader", "post_call")):
        assert entries[key]["guardrail_status"] == "not_run"
        assert entries[key]["start_time"] is None
        assert "'blocker'" in entries[key]["status_reason"]


async def test_a_call_that_fails_before_a_guardrail_says_why_it_did_not_run(
        gateway, fake_upstream, chat):
    fake_upstream.fail(500)
    client = await start(gateway, guardrail("first", default_on=True),
                         guardrail("reader", mode="post_call", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 500
    entries = by_name(await record_of(client))
    assert entries["first", "pre_call"]["guardrail_status"] == "success"
    reader = entries["reader", "post_call"]
    assert reader["guardrail_status"] == "not_run"
    assert reader["status_reason"] == "the call ended (status 500) before its post_call step"


async def test_a_stream_cut_short_leaves_the_assembled_check_not_run(gateway, fake_upstream,
                                                                      chat):
    """A post_call guardrail on a stream checks the whole reply once it has ended: a stream
    stopped before then never reached it."""
    fake_upstream.chunks = ["one ", "two ", "stop", " three"]
    client = await start(gateway,
                         guardrail("cutter", mode="post_call", type_="stream_probe",
                                   block_word="stop", default_on=True),
                         guardrail("whole", mode="post_call", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello", stream=True))
    assert resp.status == 200
    await resp.read()
    entries = by_name(await record_of(client))
    cutter = entries["cutter", "post_call"]
    # One record for all of the stream's chunks.
    assert [e["guardrail_name"] for e in entries.values()].count("cutter") == 1
    assert cutter["guardrail_status"] == "guardrail_intervened"
    assert entries["whole", "post_call"]["guardrail_status"] == "not_run"


async def test_logging_only_guardrails_are_runs_too(gateway, chat):
    client = await start(gateway, guardrail("masker", mode="logging_only", mask="hello",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    record = await record_of(client)
    [entry] = record["guardrail_information"]
    assert (entry["guardrail_mode"], entry["guardrail_status"]) == ("logging_only", "success")
    assert record["request"]["messages"][0]["content"] == "****"


@pytest.mark.parametrize("on_error,status", [("fail_closed", 502), ("fail_open", 200)])
async def test_a_vendor_outage_failed_to_respond_whatever_on_error_did(
        gateway, fake_vendor, chat, on_error, status):
    vendor = await fake_vendor()
    vendor.break_as("http_500")
    client = await start(gateway, guardrail("remote", vendor=vendor.url + "/check",
                                            on_error=on_error, default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == status
    [entry] = (await record_of(client))["guardrail_information"]
    assert entry["guardrail_status"] == "guardrail_failed_to_respond"
    assert entry["status_reason"] == "/check answered HTTP 500"


async def test_a_timeout_failed_to_respond(gateway, chat):
    client = await start(gateway, guardrail("slow", fail="stall", timeout=0.05,
                                            on_error="fail_open", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    [entry] = (await record_of(client))["guardrail_information"]
    assert entry["guardrail_status"] == "guardrail_failed_to_respond"
    assert entry["status_reason"] == "no verdict within 0.05s"


async def test_the_vendors_answer_is_kept_without_credentials(gateway, fake_vendor, chat):
    api_key = "vk-live-0123456789abcdef"
    vendor = await fake_vendor({"flagged": False, "session_token": "tok-123",
                                "echo": f"called with {api_key}", "scores": [{"pii": 0.1}]})
    client = await start(gateway, guardrail("remote", vendor=vendor.url + "/check",
                                            api_key=api_key, default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    assert vendor.headers[0]["x-api-key"] == api_key
    [entry] = (await record_of(client))["guardrail_information"]
    assert entry["guardrail_response"] == {"flagged": False, "session_token": "[REDACTED]",
                                           "echo": "called with [REDACTED]",
                                           "scores": [{"pii": 0.1}]}


async def test_a_call_without_guardrails_has_no_information(gateway, chat):
    client = await start(gateway)
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    assert (await record_of(client))["guardrail_information"] is None


@both_databases
async def test_the_spend_row_keeps_the_guardrail_information(start, fake_upstream, chat):
    client = await start({"guardrails": [
        guardrail("blocker", block_word="plan", default_on=True),
        guardrail("reader", mode="post_call", default_on=True)]}, plugins=PLUGINS)
    passed = await client.post("/v1/chat/completions", json=chat("hello"), headers=ADMIN)
    blocked = await client.post("/v1/chat/completions", json=chat("my plan"), headers=ADMIN)
    assert (passed.status, blocked.status) == (200, 400)
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()

    def statuses(row):
        return [(e["guardrail_name"], e["guardrail_mode"], e["guardrail_status"])
                for e in row["metadata"]["guardrail_information"]]

    [row] = await admin_get(client, "/spend/logs", request_id=passed.headers["x-request-id"])
    assert statuses(row) == [("blocker", "pre_call", "success"),
                             ("reader", "post_call", "success")]
    [row] = await admin_get(client, "/spend/logs", request_id=blocked.headers["x-request-id"])
    assert statuses(row) == [("blocker", "pre_call", "guardrail_intervened"),
                             ("reader", "post_call", "not_run")]
