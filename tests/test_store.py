"""The store, on SQLite and on Postgres alike: what goes in comes out the same, migrations run
once, spend is counted once however often a batch is retried, and an unreachable database is
StoreUnavailable rather than a crash."""

import asyncio
import socket
import sqlite3
import threading
import time
import uuid

import pytest

from gatehouse.store.backend import StoreUnavailable
from gatehouse.store.migrate import migrations
from gatehouse.store.postgres import PostgresStore
from gatehouse.store.schema import membership_id
from gatehouse.store.sqlite import SqliteStore


@pytest.fixture
async def store(make_store):
    return await make_store()


def key_row(name="k1", **fields):
    now = time.time()
    return {"key_hash": f"hash-{name}", "key_name": f"sk-...{name}", "created_at": now,
            "updated_at": now, **fields}


def spend_row(key_hash=None, team_id=None, spend=0.5, tags=(), request_id=None):
    now = time.time()
    return {"id": uuid.uuid4().hex, "request_id": request_id or uuid.uuid4().hex,
            "call_type": "chat_completion", "model": "gpt-4o", "key_hash": key_hash,
            "team_id": team_id, "tags": list(tags), "metadata": {"user_api_key": key_hash},
            "prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "spend": spend,
            "start_time": now, "end_time": now, "status": 200}


async def migration_rows(store):
    async with store.transaction() as tx:
        return await tx.fetchall("SELECT version, name FROM gatehouse_migrations ORDER BY version")


async def test_migrations_are_applied_once_and_recorded(make_store):
    first = await make_store()
    shipped = [(version, name) for version, name, _ in migrations()]
    recorded = await migration_rows(first)
    assert [(r["version"], r["name"]) for r in recorded] == shipped
    await first.insert_row("keys", key_row())

    # A second gateway on the same database: nothing to apply, nothing lost.
    second = await make_store()
    assert await second.migrate() == []
    assert await migration_rows(second) == recorded
    assert (await second.get_row("keys", "hash-k1"))["key_name"] == "sk-...k1"


async def test_gateways_starting_together_on_postgres_migrate_once(postgres_url):
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert len(await migration_rows(stores[0])) == len(migrations())
    finally:
        for store in stores:
            await store.close()


async def test_keys_round_trip_json_and_booleans(store):
    row = key_row(key_alias="ci", team_id="t1", models=["gpt-4o", "mock-echo"],
                  metadata={"owner": "ada", "nested": {"n": 1, "ok": True}},
                  permissions={"hide_secrets": False}, guardrails=["pii"], max_budget=2.5,
                  rpm_limit=10, tpm_limit=1000, blocked=True)
    await store.insert_row("keys", row)
    stored = await store.get_row("keys", "hash-k1")
    assert {k: stored[k] for k in row} == row
    assert stored["spend"] == 0 and stored["blocked"] is True

    before, after = await store.update_row("keys", "hash-k1", {
        "blocked": False, "metadata": {"owner": "bob"}, "models": []})
    assert before["blocked"] is True and before["metadata"]["owner"] == "ada"
    assert after["blocked"] is False and after["metadata"] == {"owner": "bob"}
    assert after["models"] == [] and after["updated_at"] >= before["updated_at"]
    assert await store.update_row("keys", "no-such-hash", {"blocked": True}) is None


async def test_keys_and_teams_list_and_delete(store):
    await store.insert_row("teams", {"team_id": "t1", "team_alias": "core", "members": ["ada"],
                                     "created_at": 1.0, "updated_at": 1.0})
    await store.insert_row("keys", key_row("a", team_id="t1", blocked=True))
    await store.insert_row("keys", key_row("b", team_id="t1"))
    await store.insert_row("keys", key_row("c", team_id="t2"))

    team = await store.get_row("teams", "t1")
    assert team["members"] == ["ada"] and team["blocked"] is False
    assert [r["key_hash"] for r in await store.list_rows("keys", where={"team_id": "t1"})] == [
        "hash-a", "hash-b"]
    assert [r["key_hash"] for r in await store.list_rows("keys", where={"blocked": True})] == [
        "hash-a"]
    assert len(await store.list_rows("keys", limit=2)) == 2
    assert [r["key_hash"] for r in await store.list_rows("keys", limit=2, offset=2)] == ["hash-c"]

    deleted = await store.delete_rows("keys", ["hash-a", "hash-nope"])
    assert [r["key_hash"] for r in deleted] == ["hash-a"]
    assert await store.get_row("keys", "hash-a") is None
    assert await store.get_row("keys", "hash-b") is not None


async def test_a_retried_spend_batch_counts_once(store):
    await store.insert_row("keys", key_row("a", team_id="t1"))
    await store.insert_row("teams", {"team_id": "t1", "created_at": 1.0, "updated_at": 1.0})
    # A row is known by its id, not its request id: two rows with one request id both count.
    batch = [spend_row("hash-a", "t1", 0.25, request_id="r1"),
             spend_row("hash-a", "t1", 0.5, request_id="r1"),
             spend_row("hash-b", None, 1.0)]

    assert await store.write_spend(batch) == 3
    # The database wrote the batch but the gateway never heard back, so it tries again,
    # this time with a row that arrived meanwhile.
    later = spend_row("hash-a", "t1", 2.0)
    assert await store.write_spend([*batch, later]) == 1
    assert await store.write_spend([*batch, later]) == 0

    assert (await store.get_row("keys", "hash-a"))["spend"] == pytest.approx(2.75)
    assert (await store.get_row("teams", "t1"))["spend"] == pytest.approx(2.75)
    logs = await store.spend_logs(key_hash="hash-a")
    assert sorted(r["spend"] for r in logs) == [0.25, 0.5, 2.0]
    assert logs[0]["metadata"] == {"user_api_key": "hash-a"} and logs[0]["tags"] == []
    assert len(await store.spend_logs(request_id="r1")) == 2


async def test_spend_by_tag(store):
    await store.write_spend([spend_row(spend=1.0, tags=["prod", "team-a"]),
                             spend_row(spend=2.0, tags=["prod"]),
                             spend_row(spend=4.0)])
    assert await store.spend_by_tag() == [
        {"tag": "prod", "log_count": 2, "spend": 3.0},
        {"tag": "team-a", "log_count": 1, "spend": 1.0},
    ]


async def test_end_users_are_blocked_and_unblocked_and_made_on_first_sight(store):
    rows = await store.set_end_users_blocked(["u1", "u2"], True)
    assert sorted((r["user_id"], r["blocked"]) for r in rows) == [("u1", True), ("u2", True)]
    await store.set_end_users_blocked(["u1"], True)  # blocking twice is not an error
    await store.set_end_users_blocked(["u1", "never-seen"], False)
    blocked = {r["user_id"]: r["blocked"] for r in await store.list_rows("end_users")}
    assert blocked == {"u1": False, "u2": True, "never-seen": False}


async def test_spend_is_charged_to_the_user_membership_organization_and_end_user(store):
    now = time.time()
    await store.insert_row("organizations", {"organization_id": "o1",
                                             "organization_alias": "acme", "created_at": now,
                                             "updated_at": now})
    await store.insert_row("teams", {"team_id": "t1", "organization_id": "o1",
                                     "created_at": now, "updated_at": now})
    await store.insert_row("users", {"user_id": "u1", "created_at": now, "updated_at": now})
    await store.insert_row("team_members", {"membership_id": membership_id("t1", "u1"),
                                            "team_id": "t1", "user_id": "u1",
                                            "created_at": now, "updated_at": now})
    row = spend_row(team_id="t1", spend=0.25)
    row["metadata"]["user_api_key_user_id"] = "u1"
    await store.write_spend([row, {**spend_row(spend=0.5), "end_user": "customer-1"},
                             {**spend_row(spend=0.5), "end_user": "customer-1"}])
    spend = {kind: (await store.get_row(kind, ident))["spend"] for kind, ident in (
        ("organizations", "o1"), ("teams", "t1"), ("users", "u1"),
        ("team_members", membership_id("t1", "u1")), ("end_users", "customer-1"))}
    assert spend == {"organizations": 0.25, "teams": 0.25, "users": 0.25,
                     "team_members": 0.25, "end_users": 1.0}
    assert (await store.get_row("end_users", "customer-1"))["blocked"] is False


async def test_the_identity_migration_keeps_keys_teams_spend_and_blocks(backend, make_store,
                                                                        monkeypatch):
    from gatehouse.store import migrate
    everything = migrate.migrations()
    monkeypatch.setattr(migrate, "migrations",
                        lambda: [m for m in everything if m[0] < 4])
    old = await make_store()
    now = time.time()
    await old.insert_row("keys", {"key_hash": "h1", "key_name": "sk-...abcd", "team_id": "t1",
                                  "max_budget": 5.0, "spend": 0.5, "created_at": now,
                                  "updated_at": now})
    await old.insert_row("teams", {"team_id": "t1", "team_alias": "eng", "blocked": True,
                                   "spend": 0.5,
                                   "members": [{"role": "admin", "user_id": "u1"}],
                                   "created_at": now, "updated_at": now})
    async with old.transaction() as tx:
        await tx.execute(  # as the gateway wrote spend rows before this migration
            "INSERT INTO gatehouse_spend_logs (id, request_id, call_type, model, key_hash, "
            "team_id, spend, start_time, end_time, status) VALUES "
            "('s1', 'r1', 'chat_completion', 'gpt-4o', 'h1', 't1', 0.5, ?, ?, 200)",
            (now, now))
        await tx.execute("INSERT INTO gatehouse_blocked_users (user_id, blocked_at) "
                         "VALUES (?, ?)", ("blocked-1", now))
    await old.close()

    monkeypatch.setattr(migrate, "migrations", lambda: everything)
    new = await make_store()
    key, team = await new.get_row("keys", "h1"), await new.get_row("teams", "t1")
    assert (key["max_budget"], key["spend"], key["team_id"]) == (5.0, 0.5, "t1")
    assert (team["team_alias"], team["blocked"], team["spend"]) == ("eng", True, 0.5)
    assert team["members"] == [{"role": "admin", "user_id": "u1"}]
    assert team["organization_id"] is None and team["team_member_permissions"] == []
    assert len(await new.spend_logs(key_hash="h1")) == 1
    assert (await new.get_row("end_users", "blocked-1"))["blocked"] is True


async def test_audit_rows(store):
    for i, when in enumerate(["2024-05-01T10:00:00", "2024-05-01T11:00:00"]):
        await store.write_audit({
            "id": f"a{i}", "updated_at": when, "changed_by": "admin", "action": "updated",
            "table_name": "keys", "object_id": "hash-a", "before_value": {"max_budget": i},
            "updated_values": {"max_budget": i + 1}})
    await store.write_audit({"id": "b", "updated_at": "2024-05-01T12:00:00",
                             "changed_by": "admin", "action": "created", "table_name": "teams",
                             "object_id": "t1", "before_value": None, "updated_values": {}})

    rows = await store.audit_logs(object_id="hash-a")
    assert [r["id"] for r in rows] == ["a1", "a0"]  # newest first
    assert rows[0]["before_value"] == {"max_budget": 1}
    assert rows[0]["updated_values"] == {"max_budget": 2}
    assert [r["id"] for r in await store.audit_logs(limit=1)] == ["b"]
    assert (await store.audit_logs(object_id="t1"))[0]["before_value"] is None


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_unreachable_database_is_store_unavailable(backend, tmp_path):
    if backend == "postgres":
        store = PostgresStore(f"postgresql://postgres@127.0.0.1:{closed_port()}/gatehouse",
                              timeout=1.0)
    else:
        (tmp_path / "a-file").write_text("not a folder")
        store = SqliteStore(str(tmp_path / "a-file" / "gatehouse.db"))
    try:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.open(), 10)
        # Later use says the same, rather than hanging or failing some other way.
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.get_row("end_users", "u1"), 10)
    finally:
        await store.close()


async def test_a_sqlite_transaction_cut_short_leaves_the_connection_usable(tmp_path):
    """A transaction whose COMMIT fails, or whose task is cancelled while its BEGIN waits on the
    worker, must not leave the connection inside it: every later write would fail."""
    store = SqliteStore(str(tmp_path / "gatehouse.db"))
    await store.open()
    try:
        # A deferred foreign key fails at COMMIT, the transaction still open (the pragma
        # cannot be set inside one).
        await store._call(store._conn.execute, "PRAGMA foreign_keys=ON")
        async with store.transaction() as tx:
            await tx.execute("CREATE TABLE parent (id TEXT PRIMARY KEY)")
            await tx.execute("CREATE TABLE child (parent TEXT REFERENCES parent(id) "
                             "DEFERRABLE INITIALLY DEFERRED)")
        with pytest.raises(sqlite3.IntegrityError):
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO child VALUES ('nobody')")
        await store.insert_row("keys", key_row("after-commit"))

        # The worker busy, a transaction's BEGIN waits behind it and its task is cancelled.
        busy = threading.Event()
        store._executor.submit(busy.wait, 10)

        async def write():
            async with store.transaction() as tx:
                await tx.execute("SELECT 1")

        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.05)
        waiting.cancel()
        busy.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await store.insert_row("keys", key_row("after-cancel"))
        for name in ("after-commit", "after-cancel"):
            assert await store.get_row("keys", f"hash-{name}") is not None
    finally:
        await store.close()
