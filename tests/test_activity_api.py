"""LiteLLM's daily activity views on both back ends: each day's spend, tokens and calls (failed
ones too) in all and by model, key, team, tag and customer, summed exactly from spend rows that
were seeded or made by real calls; paging by day; and who sees whose calls."""

import time
from datetime import UTC, datetime

import pytest
from admin_kit import (ADMIN, PRICED, admin_get, admin_post, bearer, both_databases,
                       spend_row)
from gatehouse.app import GATEWAY

DAY = 86400
MIDNIGHT = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
RANGE = {"start_date": "2024-04-30", "end_date": "2024-05-01"}


def metrics(spend, prompt, completion, requests, failed=0):
    return {"spend": spend, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "api_requests": requests,
            "successful_requests": requests - failed, "failed_requests": failed}


async def seeded(start):
    """Users ann (key "a", in team "Prod Team") and bob (key b, no team), a key without a user,
    and their calls on 2024-04-30 and 2024-05-01 -- one failed -- and one after that range."""
    client = await start()
    team = (await admin_post(client, "/team/new", {"team_alias": "Prod Team"}))["team_id"]
    for user in ("ann", "bob"):
        await admin_post(client, "/user/new", {"user_id": user, "user_role": "internal_user"})
    key_a = await admin_post(client, "/key/generate", {"user_id": "ann", "team_id": team,
                                                        "key_alias": "a"})
    key_b = await admin_post(client, "/key/generate", {"user_id": "bob"})
    key_c = await admin_post(client, "/key/generate", {})
    await admin_post(client, "/customer/new", {"user_id": "acme", "alias": "Acme Corp"})
    a, b, c = key_a["token"], key_b["token"], key_c["token"]
    # Binary fractions, so sums are exact whatever order the database adds them in.
    await client.app[GATEWAY].store.write_spend([
        spend_row(MIDNIGHT - 0.4, key=a, owner="ann", team=team, spend=0.25, prompt=10,
                  completion=18, end_user="palantir", tags=["app-prod"]),
        spend_row(MIDNIGHT - 3600, key=a, owner="ann", team=team, spend=0.5, prompt=5,
                  completion=5, end_user="palantir", tags=["app-prod", "batch"]),
        spend_row(MIDNIGHT + 10, key=a, owner="ann", team=team, model="gpt-4o", spend=0.0,
                  prompt=1, completion=0, status=500, end_user="acme"),
        spend_row(MIDNIGHT + 3600, key=b, owner="bob", model="gpt-4o", spend=2.0, prompt=3,
                  completion=4, tags=["batch"]),
        spend_row(MIDNIGHT + 7200, key=c, owner=None, model="gpt-4o", spend=0.125, prompt=1,
                  completion=1),
        spend_row(MIDNIGHT + DAY, key=a, owner="ann", team=team, spend=100.0, prompt=1,
                  completion=1, end_user="palantir", tags=["batch"]),
    ])
    return client, team, key_a, key_b, key_c


@both_databases
async def test_user_view_sums_each_day_by_model_and_key(start):
    client, team, key_a, key_b, key_c = await seeded(start)
    a, b, c = key_a["token"], key_b["token"], key_c["token"]
    answer = await admin_get(client, "/user/daily/activity", **RANGE)
    assert answer == {
        "results": [
            {"date": "2024-05-01", "metrics": metrics(2.125, 5, 5, 3, failed=1), "breakdown": {
                "models": {"gpt-4o": {"metrics": metrics(2.125, 5, 5, 3, failed=1),
                                      "metadata": {}}},
                "api_keys": {
                    a: {"metrics": metrics(0.0, 1, 0, 1, failed=1),
                        "metadata": {"key_alias": "a", "team_id": team}},
                    b: {"metrics": metrics(2.0, 3, 4, 1),
                        "metadata": {"key_alias": None, "team_id": None}},
                    c: {"metrics": metrics(0.125, 1, 1, 1),
                        "metadata": {"key_alias": None, "team_id": None}}},
                "entities": {}}},
            {"date": "2024-04-30", "metrics": metrics(0.75, 15, 23, 2), "breakdown": {
                "models": {"gpt-4": {"metrics": metrics(0.75, 15, 23, 2), "metadata": {}}},
                "api_keys": {a: {"metrics": metrics(0.75, 15, 23, 2),
                                 "metadata": {"key_alias": "a", "team_id": team}}},
                "entities": {}}}],
        "metadata": {"total_spend": 2.875, "total_prompt_tokens": 20,
                     "total_completion_tokens": 28, "total_tokens": 48,
                     "total_api_requests": 5, "total_successful_requests": 4,
                     "total_failed_requests": 1, "page": 1, "total_pages": 1,
                     "has_more": False}}

    # Filters: one user, one model, one key (by its secret or its hash).
    ann = await admin_get(client, "/user/daily/activity", user_id="ann", **RANGE)
    assert ann["metadata"]["total_spend"] == 0.75
    assert ann["metadata"]["total_api_requests"] == 3
    gpt4 = await admin_get(client, "/user/daily/activity", model="gpt-4", **RANGE)
    assert [day["date"] for day in gpt4["results"]] == ["2024-04-30"]
    for named in (key_b["key"], b):
        by_key = await admin_get(client, "/user/daily/activity", api_key=named, **RANGE)
        assert by_key["metadata"]["total_spend"] == 2.0
    # The range's end date counts whole, and nothing after it.
    later = await admin_get(client, "/user/daily/activity", start_date="2024-05-02",
                            end_date="2024-05-02")
    assert later["metadata"]["total_spend"] == 100.0


@both_databases
async def test_team_tag_and_customer_views_break_each_day_down(start):
    client, team, *_ = await seeded(start)
    teams = await admin_get(client, "/team/daily/activity", **RANGE)
    # Calls of no team are no team's.
    assert [(day["date"], day["metrics"]["api_requests"], day["breakdown"]["entities"])
            for day in teams["results"]] == [
        ("2024-05-01", 1, {team: {"metrics": metrics(0.0, 1, 0, 1, failed=1),
                                  "metadata": {"team_alias": "Prod Team"}}}),
        ("2024-04-30", 2, {team: {"metrics": metrics(0.75, 15, 23, 2),
                                  "metadata": {"team_alias": "Prod Team"}}})]
    assert (await admin_get(client, "/team/daily/activity", team_ids="other",
                            **RANGE))["results"] == []

    tags = await admin_get(client, "/tag/daily/activity", **RANGE)
    assert {day["date"]: {tag: entry["metrics"]["spend"]
                          for tag, entry in day["breakdown"]["entities"].items()}
            for day in tags["results"]} == {"2024-05-01": {"batch": 2.0},
                                            "2024-04-30": {"app-prod": 0.75, "batch": 0.5}}
    app_prod = await admin_get(client, "/tag/daily/activity", tags="app-prod,nope", **RANGE)
    assert app_prod["metadata"]["total_spend"] == 0.75
    assert app_prod["metadata"]["total_api_requests"] == 2

    for prefix in ("/customer", "/end_user"):
        customers = await admin_get(client, f"{prefix}/daily/activity", **RANGE)
        assert {day["date"]: day["breakdown"]["entities"]
                for day in customers["results"]} == {
            "2024-05-01": {"acme": {"metrics": metrics(0.0, 1, 0, 1, failed=1),
                                    "metadata": {"alias": "Acme Corp"}}},
            # Spend made palantir's row, without an alias.
            "2024-04-30": {"palantir": {"metrics": metrics(0.75, 15, 23, 2),
                                        "metadata": {"alias": None}}}}
    only = await admin_get(client, "/customer/daily/activity", end_user_ids="palantir", **RANGE)
    assert only["metadata"]["total_spend"] == 0.75


@both_databases
async def test_real_calls_show_up_under_their_key_owner_and_customer(start, fake_upstream,
                                                                     chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    await admin_post(client, "/user/new", {"user_id": "cara", "user_role": "internal_user"})
    key = await admin_post(client, "/key/generate", {"user_id": "cara", "key_alias": "cara-1"})
    costs = []
    # The second call names an end user: it is still cara's call, and the customer's.
    for body in (chat(), chat("again", user="cust-9")):
        resp = await client.post("/v1/chat/completions", json=body, headers=bearer(key["key"]))
        assert resp.status == 200, await resp.text()
        costs.append(float(resp.headers["x-litellm-response-cost"]))
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()
    today = datetime.fromtimestamp(time.time(), UTC).date().isoformat()
    window = {"start_date": today, "end_date": today}

    own = await (await client.get("/user/daily/activity", params=window,
                                  headers=bearer(key["key"]))).json()
    [day] = own["results"]
    assert day["date"] == today
    assert day["metrics"]["api_requests"] == 2
    assert day["metrics"]["spend"] == pytest.approx(sum(costs))
    assert day["breakdown"]["api_keys"][key["token"]]["metadata"]["key_alias"] == "cara-1"
    assert day["breakdown"]["models"]["gpt-4o"]["metrics"]["successful_requests"] == 2

    customers = await admin_get(client, "/customer/daily/activity", **window)
    [day] = customers["results"]
    assert list(day["breakdown"]["entities"]) == ["cust-9"]
    assert day["metrics"]["spend"] == pytest.approx(costs[1])


async def test_each_caller_sees_only_its_own_calls_and_admins_see_all(start):
    client, team, key_a, key_b, key_c = await seeded(start)
    ann, viewer_key = bearer(key_a["key"]), None
    await admin_post(client, "/user/new", {"user_id": "vera", "user_role": "proxy_admin_viewer"})
    viewer_key = bearer((await admin_post(client, "/key/generate", {"user_id": "vera"}))["key"])

    async def get(path, headers, **params):
        resp = await client.get(path, params={**RANGE, **params}, headers=headers)
        return resp.status, await resp.json()

    status, own = await get("/user/daily/activity", ann)
    assert status == 200
    assert own["metadata"]["total_spend"] == 0.75
    assert {k for day in own["results"] for k in day["breakdown"]["api_keys"]} == {
        key_a["token"]}
    assert (await get("/user/daily/activity", ann, user_id="ann"))[1] == own
    status, refused = await get("/user/daily/activity", ann, user_id="bob")
    assert status == 403
    assert refused["error"]["message"] == "Non-admin users can only view their own spend data"
    # Bob's tagged call is not ann's to see; nor another key's.
    status, tags = await get("/tag/daily/activity", ann)
    assert [{tag: entry["metrics"]["spend"] for tag, entry in day["breakdown"]["entities"].items()}
            for day in tags["results"]] == [{"app-prod": 0.75, "batch": 0.5}]
    status, other_key = await get("/user/daily/activity", ann, api_key=key_b["key"])
    assert other_key["results"] == []
    status, teams = await get("/team/daily/activity", ann)
    assert teams["metadata"]["total_api_requests"] == 3
    status, refused = await get("/customer/daily/activity", ann)
    assert status == 403
    assert refused["error"]["message"] == "Admin-only endpoint. Your user role=internal_user"

    # A key without a user sees the calls of that key alone.
    status, keyed = await get("/user/daily/activity", bearer(key_c["key"]))
    assert keyed["metadata"]["total_spend"] == 0.125

    for headers in (viewer_key, ADMIN):
        status, everything = await get("/user/daily/activity", headers)
        assert everything["metadata"]["total_spend"] == 2.875
        status, bobs = await get("/user/daily/activity", headers, user_id="bob")
        assert bobs["metadata"]["total_spend"] == 2.0
        assert (await get("/customer/daily/activity", headers))[0] == 200


async def test_pages_are_days_newest_first(start):
    client, *_ = await seeded(start)
    wide = {"start_date": "2024-04-01", "end_date": "2024-05-31"}
    first = await admin_get(client, "/user/daily/activity", page_size=2, **wide)
    second = await admin_get(client, "/user/daily/activity", page_size=2, page=2, **wide)
    assert [d["date"] for d in first["results"]] == ["2024-05-02", "2024-05-01"]
    assert [d["date"] for d in second["results"]] == ["2024-04-30"]
    assert (first["metadata"]["total_pages"], first["metadata"]["has_more"]) == (2, True)
    assert second["metadata"]["has_more"] is False
    # The totals are the whole range's on every page.
    assert first["metadata"]["total_spend"] == second["metadata"]["total_spend"] == 102.875


@pytest.mark.parametrize("params,status,message", [
    ({}, 400, "Please provide start_date and end_date"),
    ({"start_date": "2024-05-01"}, 400, "Please provide start_date and end_date"),
    ({"start_date": "May 1", "end_date": "2024-05-01"}, 400, "start_date must be a date"),
    ({"start_date": "2024-05-02", "end_date": "2024-05-01"}, 400, "end_date is before"),
    ({**RANGE, "page_size": "0"}, 422, "greater than or equal to 1"),
    ({**RANGE, "page_size": "5000"}, 422, "less than or equal to 1000"),
    ({**RANGE, "page": "x"}, 422, "valid integer"),
])
async def test_bad_queries_are_client_errors(start, params, status, message):
    client = await start()
    for path in ("/user/daily/activity", "/team/daily/activity", "/tag/daily/activity",
                 "/customer/daily/activity"):
        resp = await client.get(path, params=params, headers=ADMIN)
        assert resp.status == status, (path, await resp.text())
        # A 400 in the OpenAI error shape; a 422 in FastAPI's, as LiteLLM answers them.
        answer = await resp.json()
        said = answer["error"]["message"] if status == 400 else answer["detail"][0]["msg"]
        assert message in said, path
