"""GET /audit and /audit/{id}: pages of audit rows with LiteLLM's filters and sort, on both
back ends, and the audit rows of the changes that had none (customer blocks, a deleted user's
organization seats)."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer, both_databases
from gatehouse.access.credentials import hash_key

AUDITED = {"litellm_settings": {"store_audit_logs": True}}


async def changes(client):
    """A team made by "alice", a key in it, the key updated, a customer blocked (made on
    the way) and unblocked, by a proxy admin's own key; return the team, key and that key."""
    team = await admin_post(client, "/team/new", {"team_alias": "growth"},
                            headers={"litellm-changed-by": "alice"})
    key = await admin_post(client, "/key/generate", {"team_id": team["team_id"]})
    await admin_post(client, "/key/update", {"key": key["key"], "max_budget": 3})
    admin_user = await admin_post(client, "/user/new", {"user_id": "ada",
                                                        "user_role": "proxy_admin"})
    await admin_post(client, "/customer/block", {"user_ids": ["cust-1"]},
                     headers=bearer(admin_user["key"]))
    await admin_post(client, "/customer/unblock", {"user_ids": ["cust-1"]})
    return team, key, admin_user


async def audit(client, **params):
    return await admin_get(client, "/audit", **params)


@both_databases
async def test_audit_pages_filters_and_sorts(start):
    client = await start(AUDITED)
    team, key, admin_user = await changes(client)
    everything = await audit(client, page_size=100)
    total = everything["total"]
    assert total == len(everything["audit_logs"]) >= 7
    stamps = [row["updated_at"] for row in everything["audit_logs"]]
    assert stamps == sorted(stamps, reverse=True)

    page = await audit(client, page=2, page_size=3)
    assert (page["total"], page["page"], page["page_size"], page["total_pages"]) == (
        total, 2, 3, math.ceil(total / 3))
    assert page["audit_logs"] == everything["audit_logs"][3:6]

    teams = await audit(client, table_name="LiteLLM_TeamTable", action="created")
    [made] = teams["audit_logs"]
    assert (made["object_id"], made["changed_by"]) == (team["team_id"], "alice")
    by_alice = (await audit(client, changed_by="alice", page_size=100))["audit_logs"]
    assert team["team_id"] in {r["object_id"] for r in by_alice}
    assert key["token"] not in {r["object_id"] for r in by_alice}
    # Inside the values: the team itself and the key made in it.
    in_team = (await audit(client, object_team_id=team["team_id"]))["audit_logs"]
    assert {(r["table_name"], r["action"]) for r in in_team} >= {
        ("LiteLLM_TeamTable", "created"), ("LiteLLM_VerificationToken", "created")}
    assert {r["object_id"] for r in (await audit(client, object_key_hash=key["token"]))[
        "audit_logs"]} == {key["token"]}
    # The customer block was made with the admin's own key: the row names its hash and its
    # user, not the master key.
    [blocked] = (await audit(client, changed_by_api_key=hash_key(admin_user["key"])))[
        "audit_logs"]
    assert (blocked["table_name"], blocked["action"], blocked["object_id"],
            blocked["changed_by"]) == ("LiteLLM_EndUserTable", "created", "cust-1", "ada")
    [unblocked] = (await audit(client, table_name="LiteLLM_EndUserTable",
                               action="updated"))["audit_logs"]
    assert unblocked["updated_values"] == {"blocked": False}
    assert unblocked["before_value"]["blocked"] is True

    ascending = await audit(client, sort_order="asc", page_size=100)
    assert ascending["audit_logs"] == everything["audit_logs"][::-1]
    by_table = await audit(client, sort_by="table_name", sort_order="asc", page_size=100)
    names = [r["table_name"] for r in by_table["audit_logs"]]
    assert names == sorted(names)

    today = datetime.now(UTC).date()
    assert (await audit(client, start_date=today.isoformat(),
                        end_date=today.isoformat()))["total"] == total
    yesterday = (today - timedelta(days=1)).isoformat()
    assert (await audit(client, start_date=yesterday, end_date=yesterday))["total"] == 0
    assert (await audit(client, start_date="0001-01-01", end_date="9999-12-31"))["total"] == total

    one = everything["audit_logs"][0]
    assert await admin_get(client, f"/audit/{one['id']}") == one


async def test_a_missing_row_is_404_and_bad_queries_are_refused(start):
    client = await start(AUDITED)
    resp = await client.get("/audit/no-such-id", headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["error"]["message"] == "Audit log with ID no-such-id not found"
    for params, status, param in (({"page_size": "101"}, 422, "page_size"),
                                  ({"page": "0"}, 422, "page"),
                                  ({"sort_by": "before_value"}, 400, "sort_by"),
                                  ({"sort_order": "sideways"}, 400, "sort_order"),
                                  ({"start_date": "yesterday"}, 400, "start_date")):
        resp = await client.get("/audit", params=params, headers=ADMIN)
        assert resp.status == status, (params, await resp.text())
        body = await resp.json()
        where = body["detail"][0]["loc"][-1] if status == 422 else body["error"]["param"]
        assert where == param


async def test_viewers_read_the_audit_log_and_others_do_not(start):
    client = await start(AUDITED)
    viewer = await admin_post(client, "/user/new", {"user_id": "vera",
                                                    "user_role": "proxy_admin_viewer"})
    internal = await admin_post(client, "/user/new", {"user_id": "ivan"})
    assert (await client.get("/audit", headers=bearer(viewer["key"]))).status == 200
    assert (await client.get("/audit", headers=bearer(internal["key"]))).status == 401


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_deleting_a_user_audits_their_organization_seats(start):
    client = await start(AUDITED)
    org = await admin_post(client, "/organization/new", {"organization_alias": "acme"})
    await admin_post(client, "/organization/member_add", {
        "organization_id": org["organization_id"],
        "member": {"user_id": "olga", "role": "internal_user"}})
    await admin_post(client, "/user/delete", {"user_ids": ["olga"]})
    seats = await audit(client, table_name="LiteLLM_OrganizationMembership", action="deleted")
    [seat] = seats["audit_logs"]
    assert seat["before_value"]["user_id"] == "olga"
