"""Log retention: spend and audit rows past their period are deleted in batches, newer ones
kept, calls recorded meanwhile; gateways sharing a database take turns, one at a time; periods
that cannot be read stop the start."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from admin_kit import MASTER, PRICED, admin_post, bearer
from gatehouse.app import GATEWAY
from gatehouse.config import ConfigError, config_from_dict
from gatehouse.gateway import Gateway
from gatehouse.plugins import load_plugins
from gatehouse.store.retention import Pruned, Retention
from test_store import spend_row

DAY = 86400


def aged(days, **fields):
    row = spend_row(**fields)
    row["start_time"] = row["end_time"] = time.time() - days * DAY
    return row


def audit_row(days):
    return {"id": uuid.uuid4().hex, "changed_by": "master_key", "action": "created",
            "table_name": "LiteLLM_TeamTable", "object_id": "t1", "before_value": None,
            "updated_values": {},
            "updated_at": datetime.fromtimestamp(time.time() - days * DAY, UTC).isoformat()}


async def spend_ids(store):
    async with store.transaction() as tx:
        return {r["id"] for r in await tx.fetchall("SELECT id FROM gatehouse_spend_logs")}


async def audit_ids(store):
    async with store.transaction() as tx:
        return {r["id"] for r in await tx.fetchall("SELECT id FROM gatehouse_audit_logs")}


async def test_only_rows_past_their_period_go_in_batches(make_store):
    store = await make_store()
    old = [aged(31) for _ in range(25)]
    recent = [aged(29) for _ in range(5)]
    await store.write_spend(old + recent)
    old_audit, recent_audit = [audit_row(8) for _ in range(12)], [audit_row(6) for _ in range(3)]
    for row in old_audit + recent_audit:
        await store.write_audit(row)

    retention = Retention(store, spend_period=30 * DAY, audit_period=7 * DAY, interval=60,
                          batch=10)
    # 25 spend rows: batches of 10, 10 and 5; 12 audit rows: 10 and 2.
    assert await retention.run_once() == Pruned(spend_rows=25, audit_rows=12, batches=5)
    assert await spend_ids(store) == {row["id"] for row in recent}
    assert await audit_ids(store) == {row["id"] for row in recent_audit}
    assert await retention.run_once() == Pruned()


async def test_spend_alone_leaves_audit_rows(make_store):
    store = await make_store()
    await store.write_spend([aged(3)])
    await store.write_audit(audit_row(3000))
    retention = Retention(store, spend_period=DAY, audit_period=None, interval=60)
    assert await retention.run_once() == Pruned(spend_rows=1, batches=1)
    assert len(await audit_ids(store)) == 1


async def test_two_gateways_one_runs_retention_and_the_other_waits_its_turn(make_store):
    first, second = await make_store(), await make_store()
    await first.write_spend([aged(3) for _ in range(30)])
    a, b = (Retention(store, spend_period=DAY, audit_period=None, interval=60, batch=7)
            for store in (first, second))
    results = await asyncio.gather(a.run_once(), b.run_once())
    ran = [r for r in results if r is not None]
    assert len(ran) == 1 and ran[0].spend_rows == 30
    assert None in results
    # The holder keeps its turn for the interval; the other gets it once that has passed.
    holder, waiting = (a, b) if results[0] is not None else (b, a)
    await first.write_spend([aged(3)])
    assert await waiting.run_once() is None
    assert await holder.run_once() == Pruned(spend_rows=1, batches=1)
    assert await waiting.run_once(now=time.time() + 61) == Pruned()


async def test_calls_are_recorded_while_a_backlog_is_deleted(start, fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "general_settings": {
                              "maximum_spend_logs_retention_period": "7d",
                              "maximum_spend_logs_retention_interval": "1h"}})
    gw = client.app[GATEWAY]
    retention = gw.retention.retention
    retention.batch = 20
    await gw.store.write_spend([aged(8) for _ in range(400)])
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])

    async def calls():
        ids = []
        for _ in range(15):
            resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
            assert resp.status == 200
            ids.append(resp.headers["x-request-id"])
            await gw.accounting.flush()  # written while the batches are being deleted
        return ids

    pruned, ids = await asyncio.gather(retention.run_once(), calls())
    await gw.call_log.drain()
    await gw.accounting.flush()
    # The job that ran at start may have taken some of the rows already.
    assert pruned is not None and pruned.spend_rows <= 400
    async with gw.store.transaction() as tx:
        rows = await tx.fetchall("SELECT request_id, start_time FROM gatehouse_spend_logs")
    assert sorted(r["request_id"] for r in rows) == sorted(ids)


async def test_two_gateways_on_postgres_take_turns(postgres_url, gateway):
    config = {"general_settings": {"master_key": MASTER, "database_url": postgres_url,
                                   "maximum_audit_logs_retention_period": "30d"}}
    first, second = await gateway(config), await gateway(config)
    jobs = [client.app[GATEWAY].retention for client in (first, second)]
    # Each ran once at start: one took the lease, so now only that one may run.
    results = await asyncio.gather(*(job.run_once() for job in jobs))
    assert sorted(r is None for r in results) == [False, True]


@pytest.mark.parametrize("settings,needle", [
    ({"maximum_spend_logs_retention_period": "30 days"}, "maximum_spend_logs_retention_period"),
    ({"maximum_audit_logs_retention_period": "0d"}, "must be longer than 0"),
    ({"maximum_spend_logs_retention_period": "30d",
      "maximum_spend_logs_retention_interval": "daily"}, "maximum_spend_logs_retention_interval"),
])
def test_periods_that_cannot_be_read_stop_the_start(settings, needle):
    config = config_from_dict({"general_settings": {"master_key": MASTER, **settings}})
    with pytest.raises(ConfigError) as err:
        Gateway(config, load_plugins(load=()))
    assert needle in str(err.value)


def test_no_periods_no_job():
    config = config_from_dict({"general_settings": {"master_key": MASTER}})
    assert Gateway(config, load_plugins(load=())).retention is None
