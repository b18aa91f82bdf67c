"""Scheduled budget resets, the migration that brings existing databases to the new key
columns, and two gateways on one Postgres and Redis seeing each other's key changes, parallel
calls and resets."""

import asyncio
import sqlite3

import psycopg
import pytest
from admin_kit import MASTER, PRICED, admin_get, admin_post, bearer, until
from gatehouse.access import durations
from gatehouse.app import GATEWAY
from gatehouse.store.migrate import migrations, statements

COST_OF_ONE_CALL = 5 * 0.001 + 5 * 0.002


async def spend_of(gw, token):
    return (await gw.store.get_row("keys", token))["spend"]


async def test_a_due_reset_zeroes_spend_and_moves_the_next_reset(start, fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    gw = client.app[GATEWAY]
    made = await admin_post(client, "/key/generate", {"max_budget": COST_OF_ONE_CALL / 2,
                                                      "budget_duration": "1d"})
    key = bearer(made["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    await gw.call_log.drain()
    await gw.accounting.flush()
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 400

    # Not due yet: nothing happens.
    assert await gw.budget_resets.run_once() == {}
    assert await spend_of(gw, made["token"]) > 0
    # The run just after the reset was due.
    now = (await gw.store.get_row("keys", made["token"]))["budget_reset_at"] + 1
    assert await gw.budget_resets.run_once(now) == {"key": [made["token"]]}
    row = await gw.store.get_row("keys", made["token"])
    assert (row["spend"], row["budget_reset_at"]) == (0, durations.next_reset("1d", now))
    # Run again (another gateway, say): already done, nothing reset twice.
    assert await gw.budget_resets.run_once(now) == {}
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200


async def _settle(gw):
    await gw.call_log.drain()
    await gw.accounting.flush()


@pytest.mark.parametrize("kind,table,made_by,key_body", [
    ("user", "users", ("/user/new", {"user_id": "spender"}), {"user_id": "spender"}),
    ("team", "teams", ("/team/new", {"team_id": "spenders"}), {"team_id": "spenders"}),
])
async def test_users_and_teams_budgets_reset_at_calendar_aligned_times(
        start, fake_upstream, chat, kind, table, made_by, key_body):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    gw = client.app[GATEWAY]
    path, body = made_by
    await admin_post(client, path, {**body, "max_budget": COST_OF_ONE_CALL / 2,
                                    "budget_duration": "1d"})
    ident = next(iter(body.values()))
    key = bearer((await admin_post(client, "/key/generate", key_body))["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    await _settle(gw)
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 400

    now = (await gw.store.get_row(table, ident))["budget_reset_at"] + 1
    assert await gw.budget_resets.run_once(now) == {kind: [ident]}
    row = await gw.store.get_row(table, ident)
    assert (row["spend"], row["budget_reset_at"]) == (0, durations.next_reset("1d", now))
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200


async def test_a_budget_rows_reset_zeroes_what_links_to_it_one_duration_later(
        start, fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    gw = client.app[GATEWAY]
    await admin_post(client, "/budget/new", {"budget_id": "hourly", "budget_duration": "1h",
                                             "max_budget": COST_OF_ONE_CALL / 2})
    await admin_post(client, "/budget/new", {"budget_id": "daily", "budget_duration": "1d",
                                             "max_budget": 1.0})
    await admin_post(client, "/customer/new", {"user_id": "capped", "budget_id": "hourly"})
    await admin_post(client, "/customer/new", {"user_id": "other", "budget_id": "daily"})
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    for user in ("capped", "other"):
        resp = await client.post("/v1/chat/completions", json=chat(user=user), headers=key)
        assert resp.status == 200
    await _settle(gw)
    resp = await client.post("/v1/chat/completions", json=chat(user="capped"), headers=key)
    assert resp.status == 400

    now = (await gw.store.get_row("budgets", "hourly"))["budget_reset_at"] + 1
    assert await gw.budget_resets.run_once(now) == {"budget": ["hourly"]}
    # Not calendar-aligned: one duration from the reset.
    assert (await gw.store.get_row("budgets", "hourly"))["budget_reset_at"] == now + 3600
    assert (await gw.store.get_row("end_users", "capped"))["spend"] == 0
    # An end user on another budget keeps their spend.
    assert (await gw.store.get_row("end_users", "other"))["spend"] == COST_OF_ONE_CALL
    assert await gw.budget_resets.run_once(now) == {}
    resp = await client.post("/v1/chat/completions", json=chat(user="capped"), headers=key)
    assert resp.status == 200


def _at_schema_2(execute):
    for version, name, sql in migrations():
        if version > 2:
            break
        for statement in statements(sql):
            execute(statement)
        execute(f"INSERT INTO gatehouse_migrations (version, name, applied_at) "
                f"VALUES ({version}, '{name}', 0)")


OLD_ROWS = [
    "INSERT INTO gatehouse_keys (key_hash, key_name, key_alias, team_id, models, max_budget, "
    "spend, guardrails, created_at, updated_at) VALUES ('{h}', 'sk-...0001', 'old-key', "
    "'old-team', '[\"gpt-4o\"]', 5.0, 1.25, '[]', 1, 1)",
    "INSERT INTO gatehouse_teams (team_id, team_alias, created_at, updated_at) VALUES "
    "('old-team', 'Old team', 1, 1)",
    "INSERT INTO gatehouse_spend_logs (id, request_id, call_type, model, key_hash, team_id, "
    "spend, start_time, end_time, status) VALUES ('r1', 'req-1', 'chat_completion', 'gpt-4o', "
    "'{h}', 'old-team', 1.25, 1, 2, 200)",
]
OLD_SECRET = "sk-old-key-made-before-0003-a7c1e9"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_a_database_at_the_previous_schema_keeps_its_rows(gateway, tmp_path, request,
                                                                database, chat):
    from gatehouse.access.credentials import hash_key
    token = hash_key(OLD_SECRET)
    create = "CREATE TABLE gatehouse_migrations (version INTEGER PRIMARY KEY, name TEXT NOT " \
             "NULL, applied_at DOUBLE PRECISION NOT NULL)"
    if database == "sqlite":
        path = tmp_path / "old.db"
        with sqlite3.connect(path) as db:
            db.execute(create)
            _at_schema_2(db.execute)
            for row in OLD_ROWS:
                db.execute(row.format(h=token))
        settings = {"database_path": str(path)}
    else:
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(create)
            _at_schema_2(db.execute)
            for row in OLD_ROWS:
                db.execute(row.format(h=token))
        settings = {"database_url": url}
    client = await gateway({"general_settings": {"master_key": MASTER, **settings}})
    info = (await admin_get(client, "/key/info", key=OLD_SECRET))["info"]
    assert (info["key_alias"], info["team_id"], info["spend"], info["max_budget"]) == (
        "old-key", "old-team", 1.25, 5.0)
    assert (info["aliases"], info["allowed_routes"], info["budget_duration"]) == ({}, [], None)
    team = await admin_get(client, "/team/info", team_id="old-team")
    assert team["team_info"]["team_alias"] == "Old team"
    logs = await admin_get(client, "/spend/logs", api_key=OLD_SECRET)
    assert [row["request_id"] for row in logs] == ["req-1"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(OLD_SECRET))
    assert resp.status == 200
    updated = await admin_post(client, "/key/update", {"key": OLD_SECRET,
                                                       "budget_duration": "7d"})
    assert updated["budget_reset_at"] is not None


async def test_two_gateways_share_key_blocks_parallel_slots_and_resets(two_gateways,
                                                                       fake_upstream, chat):
    a, b = two_gateways
    made = await admin_post(a, "/key/generate", {"max_budget": COST_OF_ONE_CALL / 2,
                                                 "budget_duration": "30d"})
    key = bearer(made["key"])
    parallel = await admin_post(b, "/key/generate", {"max_parallel_requests": 1})
    # A call in flight through one gateway takes the key's one slot on the other too.
    fake_upstream.delay = 0.5
    first = asyncio.create_task(a.post("/v1/chat/completions", json=chat(),
                                       headers=bearer(parallel["key"])))
    while not fake_upstream.received:
        await asyncio.sleep(0.01)
    resp = await b.post("/v1/chat/completions", json=chat(), headers=bearer(parallel["key"]))
    assert resp.status == 429
    assert (await resp.json())["error"]["message"].startswith(
        f"Rate limit exceeded for api_key: {parallel['token']}. Limit type: "
        f"max_parallel_requests.")
    assert (await first).status == 200
    fake_upstream.delay = 0
    resp = await b.post("/v1/chat/completions", json=chat(), headers=bearer(parallel["key"]))
    assert resp.status == 200
    assert (await a.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    for gw in (a, b):
        await gw.app[GATEWAY].call_log.drain()
        await gw.app[GATEWAY].accounting.flush()
    # Spent: refused on both.
    for client in (a, b):
        resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
        assert resp.status == 400
    # A reset run by one gateway is seen by the other.
    gw_a = a.app[GATEWAY]
    now = (await gw_a.store.get_row("keys", made["token"]))["budget_reset_at"] + 1
    assert await gw_a.budget_resets.run_once(now) == {"key": [made["token"]]}

    async def b_admits():
        return (await b.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    await until(b_admits)
    # Blocked through one gateway, refused by the other.
    await admin_post(a, "/key/block", {"key": made["key"]})

    async def b_refuses():
        return (await b.post("/v1/chat/completions", json=chat(), headers=key)).status == 401
    await until(b_refuses)

