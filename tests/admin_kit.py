"""Shared by the admin API tests: the master key, auth headers, and request helpers."""

import asyncio
import time
import uuid

import pytest

MASTER = "sk-gh-test-7f3c9a1e5b2d48c6a0e9f1b7d3c5a8e2"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
PRICED = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}

# The tests of what is stored run on both back ends; the rest on SQLite alone.
both_databases = pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
# And the tests of what is stored by a gateway that also shares state through Redis: on SQLite,
# and on Postgres with Redis.
both_backends = pytest.mark.parametrize("database", ["sqlite", "postgres+redis"], indirect=True)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


async def admin_post(client, path, body, headers=None):
    resp = await client.post(path, json=body, headers={**ADMIN, **(headers or {})})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def admin_get(client, path, **params):
    resp = await client.get(path, params=params, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def until(check, seconds=3.0):
    """Poll ``check`` until it holds (another gateway's cached copy lapses within a second)."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def settle(client):
    """Wait for the calls made so far to be priced and written to the database."""
    from gatehouse.app import GATEWAY

    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()


def spend_row(start_time, *, key, owner, team=None, model="gpt-4", spend, prompt, completion,
              status=200, end_user=None, tags=()):
    """A spend row as the gateway writes one: the key's user is kept in its metadata."""
    return {"id": uuid.uuid4().hex, "request_id": uuid.uuid4().hex,
            "call_type": "chat_completion", "model": model, "key_hash": key, "team_id": team,
            "user_id": end_user or owner, "end_user": end_user, "tags": list(tags),
            "metadata": {"user_api_key_user_id": owner}, "prompt_tokens": prompt,
            "completion_tokens": completion, "total_tokens": prompt + completion,
            "spend": spend, "start_time": start_time, "end_time": start_time, "status": status}
