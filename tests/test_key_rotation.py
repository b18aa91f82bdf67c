"""Scheduled key rotation: a key made with auto_rotate and a rotation_interval gets a new secret
when due -- the old one stops working, the key keeps its alias, spend and limits under its new
token, and two gateways sharing a database rotate it once."""

import asyncio
import time
from datetime import datetime

import pytest
from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer, both_databases, until
from gatehouse.access import durations
from gatehouse.app import GATEWAY

COST_OF_ONE_CALL = 5 * 0.001 + 5 * 0.002


def epoch(iso):
    return datetime.fromisoformat(iso).timestamp()


async def settle(gw):
    await gw.call_log.drain()
    await gw.accounting.flush()


@both_databases
async def test_a_due_key_is_rotated_and_keeps_everything_but_its_secret(start, fake_upstream,
                                                                         chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "litellm_settings": {"store_audit_logs": True}})
    gw = client.app[GATEWAY]
    made = await admin_post(client, "/key/generate", {
        "key_alias": "nightly", "auto_rotate": True, "rotation_interval": "1h",
        "max_budget": 1.0})
    due = epoch(made["key_rotation_at"])
    assert due == durations.after("1h", epoch(made["created_at"]))
    old = bearer(made["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=old)).status == 200
    await settle(gw)

    # Not due yet.
    assert await gw.key_rotations.run_once() == {}
    rotated = await gw.key_rotations.run_once(due + 1)
    assert list(rotated) == [made["token"]]
    new_token = rotated[made["token"]]
    assert new_token != made["token"]
    # Already done: another run (another gateway, say) rotates nothing.
    assert await gw.key_rotations.run_once(due + 1) == {}

    resp = await client.post("/v1/chat/completions", json=chat(), headers=old)
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "token_not_found_in_db"
    resp = await client.get("/key/info", params={"key": made["token"]}, headers=ADMIN)
    assert resp.status == 404
    info = (await admin_get(client, "/key/info", key=new_token))["info"]
    assert (info["key_alias"], info["max_budget"], info["rotation_count"]) == (
        "nightly", 1.0, 1)
    assert info["spend"] == pytest.approx(COST_OF_ONE_CALL)
    assert epoch(info["last_rotation_at"]) == due + 1
    assert epoch(info["key_rotation_at"]) == durations.after("1h", due + 1)
    assert info["key_name"] != made["key_name"]
    listed = await admin_get(client, "/key/list", key_alias="nightly")
    assert listed["keys"] == [new_token]
    audit = await gw.store.audit_logs(object_id=made["token"])
    assert audit[0]["changed_by"] == "key_rotation"
    assert audit[0]["updated_values"]["token"] == new_token

    # The owner gets a usable secret by regenerating the key found by its alias.
    again = await admin_post(client, "/key/regenerate", {"key": new_token})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(again["key"]))
    assert resp.status == 200


async def test_switching_auto_rotate_off_or_on_moves_the_schedule(start):
    client = await start()
    gw = client.app[GATEWAY]
    made = await admin_post(client, "/key/generate", {"auto_rotate": True,
                                                      "rotation_interval": "30d"})
    updated = await admin_post(client, "/key/update", {"key": made["key"],
                                                       "auto_rotate": False})
    assert updated["key_rotation_at"] is None
    assert await gw.key_rotations.run_once(epoch(made["created_at"]) + 365 * 86400) == {}
    before = time.time()
    updated = await admin_post(client, "/key/update", {"key": made["key"],
                                                       "auto_rotate": True,
                                                       "rotation_interval": "1d"})
    # One interval from the update.
    assert before + 86400 <= epoch(updated["key_rotation_at"]) <= time.time() + 86400


@pytest.mark.parametrize("body", [{"auto_rotate": True}, {"auto_rotate": True,
                                                          "rotation_interval": "0s"}])
async def test_auto_rotate_without_an_interval_is_refused(start, body):
    client = await start()
    resp = await client.post("/key/generate", json=body, headers=ADMIN)
    assert resp.status == 400
    answer = await resp.json()
    assert answer["error"]["param"] == "rotation_interval"


async def test_a_key_flagged_before_rotations_were_scheduled_gets_its_first_time(start):
    client = await start()
    gw = client.app[GATEWAY]
    made = await admin_post(client, "/key/generate", {"auto_rotate": True,
                                                      "rotation_interval": "2h"})
    # As a key flagged before migration 0007 is: flagged, but with no rotation time.
    await gw.store.update_row("keys", made["token"], {"key_rotation_at": None})
    now = epoch(made["created_at"]) + 10
    assert await gw.key_rotations.run_once(now) == {}
    row = await gw.store.get_row("keys", made["token"])
    assert row["key_rotation_at"] == durations.after("2h", now)
    resp = await client.get("/key/info", headers=bearer(made["key"]))
    assert resp.status == 200


async def test_two_gateways_rotate_a_key_once(two_gateways, chat):
    a, b = two_gateways
    made = await admin_post(a, "/key/generate", {"auto_rotate": True,
                                                 "rotation_interval": "1d"})
    key = bearer(made["key"])
    for client in (a, b):
        assert (await client.post("/v1/chat/completions", json=chat(),
                                  headers=key)).status == 200
    due = epoch(made["key_rotation_at"]) + 1
    results = await asyncio.gather(a.app[GATEWAY].key_rotations.run_once(due),
                                   b.app[GATEWAY].key_rotations.run_once(due))
    assert sorted(len(r) for r in results) == [0, 1]
    new_token = next(iter(r for r in results if r))[made["token"]]
    info = (await admin_get(b, "/key/info", key=new_token))["info"]
    assert info["rotation_count"] == 1
    # The old secret is refused by both gateways (the other's cached copy lapses in a second).
    for client in (a, b):
        async def refused(client=client):
            resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
            return resp.status == 401
        await until(refused)
