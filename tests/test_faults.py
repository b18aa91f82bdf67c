"""Outages, made real: a TCP proxy between the gateway and Postgres or Redis cuts the line and
restores it while calls keep coming.

Database down: keys already seen keep working, unknown keys get a 503, spend rows wait in
memory and are all written -- once -- when the database returns. Redis down: calls go on with
in-process counters, the log says so, and the counts made meanwhile join the shared ones when
Redis answers again. No call is held up for more than a few seconds, none gets a 500.
"""

import asyncio
import logging
import time
from urllib.parse import urlsplit

import psycopg
import pytest

from gatehouse.app import GATEWAY
from gatehouse.access.credentials import hash_key, new_key
from tcp_proxy import TcpProxy

MASTER = "sk-gh-faults-3b9e1c7a5d2f48e6"
# Mock replies echo the prompt: "hello" is 1 prompt token, "You said: hello" 3 completion
# tokens, so one call costs 1 * 0.001 + 3 * 0.002.
MODEL = {"model_name": "priced", "params": {
    "model": "mock/echo", "input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}
COST = 0.007
CALL_TIMEOUT = 5  # seconds: an outage may slow a call down, never hang it


@pytest.fixture
def proxy():
    """``proxy(url)`` -> (TcpProxy, the same URL through the proxy)."""
    made = []

    def make(url):
        parts = urlsplit(url)
        started = TcpProxy(parts.hostname, parts.port).start()
        made.append(started)
        user = f"{parts.username}@" if parts.username else ""
        return started, parts._replace(netloc=f"{user}127.0.0.1:{started.port}").geturl()

    yield make
    for started in made:
        started.close()


@pytest.fixture
def start(gateway):
    async def start(**settings):
        client = await gateway({"model_list": [MODEL], "general_settings": {
            "master_key": MASTER, "spend_flush_interval": 0.1, **settings}})
        return client, client.app[GATEWAY]
    return start


async def add_key(gw, **fields):
    secret = new_key()
    now = time.time()
    await gw.store.insert_row("keys", {"key_hash": hash_key(secret), "key_name": secret[-4:],
                                       "created_at": now, "updated_at": now, **fields})
    return secret


async def call(client, secret, user="alice"):
    resp = await asyncio.wait_for(client.post(
        "/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"},
        json={"model": "priced", "user": user,
              "messages": [{"role": "user", "content": "hello"}]}), CALL_TIMEOUT)
    return resp.status, await resp.json()


async def until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def no_tracebacks(caplog):
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# The servers and proxies come first in each signature so they outlive the gateways.

async def test_database_outage_loses_no_spend_and_refuses_only_unknown_keys(
        postgres_url, proxy, start, caplog):
    line, through_proxy = proxy(postgres_url)
    client, gw = await start(database_url=through_proxy)
    secret = await add_key(gw)
    assert (await call(client, secret))[0] == 200

    line.cut()
    # A key the gateway never saw cannot be checked: 503, not 401 and not 500.
    status, body = await call(client, new_key())
    assert status == 503, body
    assert body["error"]["type"] == "service_unavailable"
    # The known key works from the cache, past the cache's one-second freshness; the outage,
    # once noticed, costs those calls no more waiting.
    await asyncio.sleep(1.1)

    async def five_calls():
        return [await call(client, secret) for _ in range(5)]
    for status, body in await asyncio.wait_for(five_calls(), CALL_TIMEOUT):
        assert status == 200, body
    await gw.call_log.drain()
    assert len(gw.accounting.pending) >= 5
    assert any("unreachable" in r.getMessage() for r in caplog.records)

    line.restore()
    await until(lambda: not gw.accounting.pending)
    with psycopg.connect(postgres_url) as db:
        rows = db.execute("SELECT count(*), sum(spend) FROM gatehouse_spend_logs "
                          "WHERE key_hash = %s", (hash_key(secret),)).fetchone()
        (key_spend,) = db.execute("SELECT spend FROM gatehouse_keys WHERE key_hash = %s",
                                  (hash_key(secret),)).fetchone()
    assert rows[0] == 6
    assert rows[1] == pytest.approx(6 * COST)
    assert key_spend == pytest.approx(6 * COST)
    # Back to normal: a key created now works.
    assert (await call(client, await add_key(gw)))[0] == 200
    assert no_tracebacks(caplog) == []


async def test_redis_outage_falls_back_and_replays_counts(
        redis_url, redis_namespace, proxy, start, caplog):
    line, through_proxy = proxy(redis_url)
    # Two gateways on one Redis (and one SQLite file) share one budget of 5.5 calls.
    client_a, gw_a = await start(redis_url=through_proxy, redis_namespace=redis_namespace)
    client_b, gw_b = await start(redis_url=through_proxy, redis_namespace=redis_namespace)
    secret = await add_key(gw_a, max_budget=5.5 * COST)

    async def settled_call(client, gw):
        result = await call(client, secret)
        await gw.call_log.drain()  # the call's spend is counted
        return result[0]

    assert await settled_call(client_a, gw_a) == 200
    line.cut()
    for client, gw in ((client_a, gw_a), (client_b, gw_b)) * 2:
        assert await settled_call(client, gw) == 200
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    assert not gw_a.cache.reachable and not gw_b.cache.reachable

    line.restore()
    await until(lambda: gw_a.cache.reachable and gw_b.cache.reachable)
    assert any("Redis answers again" in r.getMessage() for r in caplog.records)
    # Five calls spent: one more fits the budget, and then neither gateway takes another.
    assert await settled_call(client_b, gw_b) == 200
    status, body = await call(client_a, secret)
    assert status == 400 and body["error"]["type"] == "budget_exceeded", body
    assert (await call(client_b, secret))[0] == 400
    assert no_tracebacks(caplog) == []


async def readiness(client):
    resp = await asyncio.wait_for(client.get("/health/readiness"), CALL_TIMEOUT)
    return resp.status, await resp.json()


async def readiness_turns(client, wanted):
    """Readiness's answer once its status is ``wanted`` (probes are reused for a second)."""
    for _ in range(100):
        status, body = await readiness(client)
        if status == wanted:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"readiness still {status}: {body}")


@pytest.fixture
async def behind_lines(postgres_url, redis_url, redis_namespace, proxy, start):
    """A gateway whose database and Redis are reached through proxies: (client, lines)."""
    db_line, db_url = proxy(postgres_url)
    redis_line, through_redis = proxy(redis_url)
    client, _ = await start(database_url=db_url, redis_url=through_redis,
                            redis_namespace=redis_namespace)
    return client, {"database": db_line, "redis": redis_line}


@pytest.mark.parametrize("backend", ["database", "redis"])
async def test_readiness_fails_while_a_backend_is_down_and_recovers(behind_lines, backend):
    client, lines = behind_lines
    assert (await readiness(client))[0] == 200
    lines[backend].cut()
    body = await readiness_turns(client, 503)
    assert body["detail"] == f"Service Unhealthy ({backend} unreachable)"
    lines[backend].restore()
    await readiness_turns(client, 200)


async def test_liveness_answers_with_every_backend_down(behind_lines):
    client, lines = behind_lines
    for line in lines.values():
        line.cut()
    status, body = await readiness(client)
    assert status == 503
    assert body["detail"] == "Service Unhealthy (database, redis unreachable)"
    # Liveness never asks either of them: restarting would not bring them back.
    live = await asyncio.wait_for(client.get("/health/liveliness"), CALL_TIMEOUT)
    assert (live.status, await live.json()) == (200, "I'm alive!")
