"""The global spend reports on both back ends: exact sums of seeded spend rows, grouped by day
and team, customer or key, date ranges that include their end date whole, the last-30-days
views, tags, the spend reset, and which callers may read them."""

import time
import uuid
from datetime import UTC, datetime

import pytest
from admin_kit import ADMIN, MASTER, PRICED, admin_get, admin_post, bearer, both_databases
from gatehouse.app import GATEWAY

DAY = 86400
# 2024-05-01T00:00:00Z: rows either side of it land on different days.
MIDNIGHT = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
RANGE = {"start_date": "2024-04-30", "end_date": "2024-05-01"}


def row(start_time, *, key, team=None, model="gpt-4", spend, prompt, completion,
        end_user=None, user=None, tags=()):
    return {"id": uuid.uuid4().hex, "request_id": uuid.uuid4().hex, "call_type": "chat_completion",
            "model": model, "key_hash": key, "team_id": team, "user_id": user,
            "end_user": end_user, "tags": list(tags), "metadata": {},
            "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "spend": spend, "start_time": start_time,
            "end_time": start_time, "status": 200}


async def seeded(start):
    """A gateway with a team "Prod Team" and three keys, and spend rows on 2024-04-30 and
    2024-05-01 -- one 0.4 s before midnight -- and either side of that range."""
    client = await start()
    team = (await admin_post(client, "/team/new", {"team_alias": "Prod Team"}))["team_id"]
    key_a = await admin_post(client, "/key/generate", {"team_id": team, "key_alias": "a"})
    key_a2 = await admin_post(client, "/key/generate", {"team_id": team})
    key_b = await admin_post(client, "/key/generate", {})
    a, a2, b = key_a["token"], key_a2["token"], key_b["token"]
    # Binary fractions, so sums are exact whatever order the database adds them in.
    await client.app[GATEWAY].store.write_spend([
        row(MIDNIGHT - 0.4, key=a, team=team, spend=0.25, prompt=10, completion=18,
            end_user="palantir", user="u1", tags=["app-prod"]),
        row(MIDNIGHT - 3600, key=a, team=team, spend=0.5, prompt=5, completion=5,
            end_user="palantir", user="u1", tags=["app-prod", "batch"]),
        row(MIDNIGHT + 10, key=a2, team=team, model="gpt-4o", spend=1.0, prompt=1,
            completion=1, end_user="acme"),
        row(MIDNIGHT + 3600, key=b, model="gpt-4o", spend=2.0, prompt=3, completion=4,
            tags=["batch"]),
        # Outside the range: the first moment after 2024-05-01, the last before 2024-04-30.
        row(MIDNIGHT + DAY, key=a, team=team, spend=100.0, prompt=1, completion=1,
            end_user="palantir", tags=["batch"]),
        row(MIDNIGHT - DAY - 1, key=a, team=team, spend=200.0, prompt=1, completion=1,
            end_user="palantir", tags=["batch"]),
    ])
    return client, team, key_a, a, a2, b


@both_databases
async def test_report_by_team_and_by_customer_sums_each_day(start):
    client, _, _, a, a2, b = await seeded(start)
    assert await admin_get(client, "/global/spend/report", **RANGE) == [
        {"group_by_day": "2024-04-30T00:00:00+00:00", "teams": [
            {"team_name": "Prod Team", "total_spend": 0.75, "metadata": [
                {"model": "gpt-4", "api_key": a, "spend": 0.75, "total_tokens": 38}]}]},
        {"group_by_day": "2024-05-01T00:00:00+00:00", "teams": [
            {"team_name": "Unassigned Team", "total_spend": 2.0, "metadata": [
                {"model": "gpt-4o", "api_key": b, "spend": 2.0, "total_tokens": 7}]},
            {"team_name": "Prod Team", "total_spend": 1.0, "metadata": [
                {"model": "gpt-4o", "api_key": a2, "spend": 1.0, "total_tokens": 2}]}]},
    ]
    assert await admin_get(client, "/global/spend/report", group_by="customer", **RANGE) == [
        {"group_by_day": "2024-04-30T00:00:00+00:00", "customers": [
            {"customer": "palantir", "total_spend": 0.75, "metadata": [
                {"model": "gpt-4", "api_key": a, "spend": 0.75, "total_tokens": 38}]}]},
        {"group_by_day": "2024-05-01T00:00:00+00:00", "customers": [
            {"customer": "acme", "total_spend": 1.0, "metadata": [
                {"model": "gpt-4o", "api_key": a2, "spend": 1.0, "total_tokens": 2}]}]},
    ]
    # One day: the row 0.4 s before midnight belongs to the day before.
    [day] = await admin_get(client, "/global/spend/report", start_date="2024-04-30",
                            end_date="2024-04-30")
    assert day["teams"][0]["total_spend"] == 0.75


@both_databases
async def test_report_by_key_and_its_filters(start):
    client, team, key_a, a, a2, b = await seeded(start)

    def per_key(key, cost, prompt, completion, model):
        return {"api_key": key, "total_cost": cost, "total_input_tokens": prompt,
                "total_output_tokens": completion, "model_details": [
                    {"model": model, "total_cost": cost, "total_input_tokens": prompt,
                     "total_output_tokens": completion}]}

    by_a = per_key(a, 0.75, 15, 23, "gpt-4")
    assert await admin_get(client, "/global/spend/report", group_by="api_key", **RANGE) == [
        per_key(b, 2.0, 3, 4, "gpt-4o"), per_key(a2, 1.0, 1, 1, "gpt-4o"), by_a]
    # A key is named by its secret (hashed here) or its hash; filters beat group_by.
    for named in (key_a["key"], a):
        assert await admin_get(client, "/global/spend/report", api_key=named,
                               group_by="team", **RANGE) == [by_a]
    assert await admin_get(client, "/global/spend/report", internal_user_id="u1",
                           **RANGE) == [by_a]
    assert await admin_get(client, "/global/spend/report", team_id=team, customer_id="acme",
                           **RANGE) == [per_key(a2, 1.0, 1, 1, "gpt-4o")]
    assert await admin_get(client, "/global/spend/report", api_key="sk-nobody", **RANGE) == []
    # To the last day a date can name: the row after the range counts too.
    [later] = await admin_get(client, "/global/spend/report", api_key=a,
                              start_date="2024-04-30", end_date="9999-12-31")
    assert later["total_cost"] == 100.75


@both_databases
async def test_tags_over_a_range_and_all_time(start):
    client, *_ = await seeded(start)
    assert await admin_get(client, "/global/spend/tags", **RANGE) == {"spend_per_tag": [
        {"name": "batch", "spend": 2.5, "log_count": 2},
        {"name": "app-prod", "spend": 0.75, "log_count": 2}]}
    assert await admin_get(client, "/global/spend/tags", tags="app-prod,nope", **RANGE) == {
        "spend_per_tag": [{"name": "app-prod", "spend": 0.75, "log_count": 2}]}
    assert await admin_get(client, "/spend/tags") == [
        {"individual_request_tag": "batch", "log_count": 4, "total_spend": 302.5},
        {"individual_request_tag": "app-prod", "log_count": 2, "total_spend": 0.75}]


@both_databases
async def test_last_30_days_of_keys_and_teams_and_a_real_call_among_them(start,
                                                                        fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    prod = (await admin_post(client, "/team/new", {"team_alias": "Prod Team"}))["team_id"]
    nameless = (await admin_post(client, "/team/new", {}))["team_id"]
    key_a = await admin_post(client, "/key/generate", {"team_id": prod, "key_alias": "a"})
    key_b = await admin_post(client, "/key/generate", {"team_id": nameless})
    a, b = key_a["token"], key_b["token"]
    now = time.time()
    await client.app[GATEWAY].store.write_spend([
        row(now - DAY, key=a, team=prod, spend=3.0, prompt=1, completion=1),
        row(now - 2 * DAY, key=b, team=nameless, spend=0.5, prompt=1, completion=1),
        row(now - 2 * DAY, key=b, spend=0.25, prompt=1, completion=1),
        row(now - 40 * DAY, key=b, team=nameless, spend=50.0, prompt=1, completion=1)])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key_b["key"]))
    assert resp.status == 200
    call_cost = float(resp.headers["x-litellm-response-cost"])
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()

    assert await admin_get(client, "/global/spend/keys") == [
        {"api_key": a, "total_spend": 3.0, "key_alias": "a", "key_name": key_a["key_name"],
         "team_id": prod},
        {"api_key": b, "total_spend": pytest.approx(0.75 + call_cost), "key_alias": None,
         "key_name": key_b["key_name"], "team_id": nameless}]
    assert [r["api_key"] for r in await admin_get(client, "/global/spend/keys", limit=1)] == [a]

    def day(t):
        return datetime.fromtimestamp(t, UTC).date().isoformat()

    teams = await admin_get(client, "/global/spend/teams")
    # No alias and no team alike are "Unassigned"; figures rounded to cents.
    assert teams["teams"] == ["Prod Team", "Unassigned"]
    assert teams["total_spend_per_team"] == [
        {"team_id": "Prod Team", "total_spend": 3.0},
        {"team_id": "Unassigned", "total_spend": round(0.75 + call_cost, 2)}]
    daily = {entry.pop("date"): entry for entry in teams["daily_spend"]}
    assert daily[day(now - DAY)]["Prod Team"] == 3.0
    assert daily[day(now - 2 * DAY)] == {"Unassigned": 0.75}
    assert day(now - 40 * DAY) not in daily


@both_databases
async def test_reset_zeroes_every_key_and_team_and_budgets_count_from_zero(start,
                                                                           fake_upstream,
                                                                           chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    team = (await admin_post(client, "/team/new", {}))["team_id"]
    key = await admin_post(client, "/key/generate", {"team_id": team, "max_budget": 0.01})
    # 5 prompt and 5 completion tokens: 0.015, past the key's budget.
    assert (await client.post("/v1/chat/completions", json=chat(),
                              headers=bearer(key["key"]))).status == 200
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()
    refused = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key["key"]))
    assert refused.status == 400

    resp = await client.post("/global/spend/reset", headers=ADMIN)
    assert resp.status == 200
    assert await resp.json() == {"message": "Spend for all API Keys and Teams reset "
                                            "successfully", "status": "success"}
    info = await admin_get(client, "/key/info", key=key["key"])
    assert info["info"]["spend"] == 0
    assert (await admin_get(client, "/team/info", team_id=team))["team_info"]["spend"] == 0
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key["key"]))
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("params,message", [
    ({}, "Please provide start_date and end_date"),
    ({"start_date": "2024-05-01"}, "Please provide start_date and end_date"),
    ({"start_date": "May 1", "end_date": "2024-05-01"}, "start_date must be a date"),
    ({"start_date": "2024-05-02", "end_date": "2024-05-01"}, "end_date is before start_date"),
    ({**RANGE, "group_by": "model"}, "group_by must be one of"),
])
async def test_bad_report_queries_are_400s(start, params, message):
    client = await start()
    for path in ("/global/spend/report", "/global/spend/tags"):
        if path.endswith("tags") and "group_by" in params:
            continue
        resp = await client.get(path, params=params, headers=ADMIN)
        assert resp.status == 400, await resp.text()
        error = (await resp.json())["error"]
        assert message in error["message"]
        assert error["type"] == "bad_request"


READS = [("/global/spend/report", RANGE), ("/global/spend/keys", {}),
         ("/global/spend/teams", {}), ("/global/spend/tags", RANGE), ("/spend/keys", {}),
         ("/spend/users", {}), ("/spend/tags", {}), ("/spend/logs", {})]


async def test_who_may_read_the_reports_and_who_may_reset(start):
    client = await start()

    async def user_key(user_id, role, **key_fields):
        await admin_post(client, "/user/new", {"user_id": user_id, "user_role": role})
        made = await admin_post(client, "/key/generate", {"user_id": user_id, **key_fields})
        return bearer(made["key"])

    viewer = await user_key("vera", "proxy_admin_viewer")
    internal = await user_key("ivan", "internal_user")
    permitted = await user_key("pia", "internal_user",
                               permissions={"get_spend_routes": True})
    admin_user = await user_key("ada", "proxy_admin")
    no_user = bearer((await admin_post(client, "/key/generate", {}))["key"])
    for path, params in READS:
        for headers in (ADMIN, viewer, permitted, admin_user):
            resp = await client.get(path, params=params, headers=headers)
            assert resp.status == 200, (path, await resp.text())
        for headers in (internal, no_user):
            resp = await client.get(path, params=params, headers=headers)
            assert resp.status == 401, (path, await resp.text())
            assert "Only proxy admin" in (await resp.json())["error"]["message"]

    # The reset is the master key's alone: not even a proxy admin's own key may.
    for headers in (admin_user, viewer, permitted):
        resp = await client.post("/global/spend/reset", headers=headers)
        assert resp.status == 401
        assert (await resp.json())["error"]["message"] == (
            "Authentication Error, Tried to access route=/global/spend/reset, which is only "
            "for MASTER KEY")
    assert (await client.post("/global/spend/reset", headers=ADMIN)).status == 200


@both_databases
async def test_spend_keys_and_users_list_the_rows_without_secrets(start):
    client = await start()
    await admin_post(client, "/user/new", {"user_id": "u1", "user_email": "u1@x.io"})
    await admin_post(client, "/user/new", {"user_id": "u2"})
    resp = await client.get("/spend/keys", headers=ADMIN)
    text = await resp.text()
    keys = await resp.json()
    assert sorted(k["user_id"] for k in keys) == ["u1", "u2"]
    assert all(k["token"] and k["token"] not in ("", None) for k in keys)
    assert MASTER not in text and "sk-" not in text.replace('"sk-...', "")
    [user] = await admin_get(client, "/spend/users", user_id="u1")
    assert (user["user_id"], user["user_email"]) == ("u1", "u1@x.io")
    assert sorted(u["user_id"] for u in await admin_get(client, "/spend/users")) == ["u1", "u2"]
