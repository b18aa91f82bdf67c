"""``GET /guardrails/usage`` on both back ends: each guardrail's runs by verdict, shadow
disagreements and verdict-cache hits over a period, summed by the database from the spend
rows' ``guardrail_information`` -- seeded rows for exact sums at the period's edges, and real
calls for what the gateway itself records. Proxy admins and their viewers only."""

import uuid
from datetime import UTC, datetime

from admin_kit import ADMIN, admin_get, admin_post, bearer, both_databases
from doubles import PLUGINS, guardrail
from gatehouse.app import GATEWAY

# 2024-05-01T00:00:00Z
MIDNIGHT = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
DAY = 86400


def run(name, status, **extra):
    return {"guardrail_name": name, "guardrail_provider": "probe", "guardrail_mode": "pre_call",
            "guardrail_status": status, "duration": 0.25, **extra}


def spend_row(start_time, runs):
    return {"id": uuid.uuid4().hex, "request_id": uuid.uuid4().hex,
            "call_type": "chat_completion", "model": "gpt-4o", "tags": [],
            "metadata": {"guardrail_information": runs}, "spend": 0.0,
            "start_time": start_time, "end_time": start_time, "status": 200}


def usage_of(answer):
    return {entry["guardrail_name"]: entry for entry in answer["guardrails"]}


@both_databases
async def test_counts_each_guardrails_verdicts_over_the_period(start):
    client = await start()
    await client.app[GATEWAY].store.write_spend([
        spend_row(MIDNIGHT + 10, [
            run("kw", "success", cache={"hits": 3, "misses": 1}),
            run("watch", "would_have_intervened", enforced=False),
            run("candidate", "would_have_intervened", enforced=False, shadow_of="kw",
                verdicts_differ=True)]),
        spend_row(MIDNIGHT + 20, [
            run("kw", "guardrail_intervened", cache={"hits": 0, "misses": 1}),
            run("watch", "not_run", duration=0.0),
            run("candidate", "success", shadow_of="kw", verdicts_differ=False)]),
        spend_row(MIDNIGHT + 30, [run("kw", "guardrail_failed_to_respond")]),
        # A call that ran no guardrail, and one whose list is empty.
        spend_row(MIDNIGHT + 40, None),
        spend_row(MIDNIGHT + 50, []),
        # Outside the period: the moment after it ends, and before it starts.
        spend_row(MIDNIGHT + DAY, [run("kw", "success")]),
        spend_row(MIDNIGHT - 1, [run("kw", "success")]),
    ])
    answer = await admin_get(client, "/guardrails/usage", start_date="2024-05-01",
                             end_date="2024-05-01")
    assert answer["start_date"] == "2024-05-01T00:00:00+00:00"
    assert answer["end_date"] == "2024-05-02T00:00:00+00:00"
    assert [e["guardrail_name"] for e in answer["guardrails"]] == ["candidate", "kw", "watch"]
    found = usage_of(answer)
    assert found["kw"] == {
        "guardrail_name": "kw", "runs": 3, "success": 1, "guardrail_intervened": 1,
        "would_have_intervened": 0, "guardrail_failed_to_respond": 1, "not_run": 0,
        "shadow_disagreements": 0, "cache_hits": 3, "cache_misses": 2, "cache_hit_rate": 0.6,
        "avg_duration_ms": 250.0}
    assert (found["watch"]["runs"], found["watch"]["would_have_intervened"],
            found["watch"]["not_run"], found["watch"]["cache_hit_rate"]) == (1, 1, 1, None)
    assert (found["candidate"]["runs"], found["candidate"]["shadow_disagreements"]) == (2, 1)

    # A period shorter than a day: date-times, UTC unless they say otherwise.
    answer = await admin_get(client, "/guardrails/usage", start_date="2024-05-01T00:00:15Z",
                             end_date="2024-05-01T02:00:35+02:00")
    assert usage_of(answer)["kw"]["runs"] == 2
    answer = await admin_get(client, "/guardrails/usage", start_date="2024-06-01",
                             end_date="2024-06-30")
    assert answer["guardrails"] == []


@both_databases
async def test_real_calls_are_counted_as_the_gateway_recorded_them(start, fake_vendor):
    vendor = await fake_vendor({})
    client = await start({"guardrails": [
        {"guardrail_name": "kw", "litellm_params": {
            "guardrail": "banned_keywords", "mode": "pre_call", "default_on": True,
            "banned_keywords_list": ["zebra"]}},
        {"guardrail_name": "kw-watch", "litellm_params": {
            "guardrail": "banned_keywords", "mode": "during_call", "default_on": True,
            "enforce": False, "banned_keywords_list": ["lion"]}},
        {"guardrail_name": "kw-candidate", "litellm_params": {
            "guardrail": "banned_keywords", "mode": "pre_call", "shadow_of": "kw",
            "banned_keywords_list": ["lion"]}},
        guardrail("check", type_="vendor_check", vendor=vendor.url + "/v1", default_on=True,
                  cache_ttl=60)]}, plugins=PLUGINS, load=["banned_keywords"])
    for text, status in (("hello", 200), ("hello", 200), ("a lion", 200), ("a zebra", 400)):
        resp = await client.post("/v1/chat/completions", headers=ADMIN, json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        assert resp.status == status, await resp.text()
    gateway = client.app[GATEWAY]
    await gateway.call_log.drain()
    await gateway.accounting.flush()
    today = datetime.now(UTC).date().isoformat()
    found = usage_of(await admin_get(client, "/guardrails/usage", start_date=today,
                                     end_date=today))
    assert (found["kw"]["runs"], found["kw"]["success"],
            found["kw"]["guardrail_intervened"]) == (4, 3, 1)
    assert found["kw-watch"]["would_have_intervened"] == 1
    assert found["kw-watch"]["guardrail_intervened"] == 0
    # The candidate blocks "lion" where kw passes it, and passes "zebra" where kw blocks.
    assert found["kw-candidate"]["shadow_disagreements"] == 2
    # "hello" a second time is a hit.
    assert found["check"]["cache_hits"] >= 1 and found["check"]["cache_misses"] >= 1
    assert 0 < found["check"]["cache_hit_rate"] < 1


async def test_only_admins_and_their_viewers_may_read_it_and_dates_are_checked(start):
    client = await start()
    period = {"start_date": "2024-05-01", "end_date": "2024-05-02"}

    async def user_key(user_id, role):
        await admin_post(client, "/user/new", {"user_id": user_id, "user_role": role})
        return bearer((await admin_post(client, "/key/generate", {"user_id": user_id}))["key"])

    viewer = await user_key("vera", "proxy_admin_viewer")
    internal = await user_key("ivan", "internal_user")
    resp = await client.get("/guardrails/usage", params=period, headers=viewer)
    assert resp.status == 200, await resp.text()
    resp = await client.get("/guardrails/usage", params=period, headers=internal)
    assert resp.status == 401
    assert "Only proxy admin" in (await resp.json())["error"]["message"]
    for params, param in (({"start_date": "2024-05-01"}, "end_date"),
                          ({**period, "start_date": "yesterday"}, "start_date"),
                          ({**period, "end_date": "2024-04-01"}, "end_date"),
                          ({**period, "end_date": "9999-12-31"}, "end_date"),
                          ({**period, "start_date": "2024-05-01T25:00:00"}, "start_date")):
        resp = await client.get("/guardrails/usage", params=params, headers=ADMIN)
        assert resp.status == 400, params
        error = (await resp.json())["error"]
        assert error["param"] == param and error["type"] == "bad_request", error
