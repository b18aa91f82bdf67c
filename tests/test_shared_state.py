"""Many gateways, one truth: two real gateway processes on one Postgres database and one Redis
namespace enforce one budget and one rate limit between them, and a key revoked through one is
refused by the other within a second. Without Redis, counters stay in each process."""

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import orjson
import psycopg
import pytest
import yaml

from gatehouse.app import GATEWAY
from gatehouse.store.cache import LocalCache
from gatehouse.access.credentials import hash_key, new_key

MASTER = "sk-gh-shared-8d41f0b6c2e97a35"
# One call: 1 prompt token ("hello") at 0.001 and 3 completion tokens ("You said: hello")
# at 0.002.
MODEL = {"model_name": "priced", "params": {
    "model": "mock/echo", "input_cost_per_token": 0.001, "output_cost_per_token": 0.002}}
COST = 0.007


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gatehouse:
    """One ``gatehouse`` process on its own port."""

    def __init__(self, config_path):
        self.port = free_port()
        # Its output goes to files: a pipe nobody reads until the end fills up, and a gateway
        # that logs a lot (an API fuzzer's requests) then stops dead on its next log line.
        self.stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatehouse.cli", "--config", str(config_path),
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=self.stderr, text=True)

    def _stderr(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self._stderr()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/readiness",
                                       timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("gateway did not become ready")

    def call(self, secret):
        return self.post("/v1/chat/completions", {
            "model": "priced", "messages": [{"role": "user", "content": "hello"}]}, secret)

    def post(self, path, body, secret):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=orjson.dumps(body),
            headers={"content-type": "application/json", "authorization": f"Bearer {secret}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return self.proc.returncode, self._stderr()


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory, module_postgres_url, module_redis_url,
                 module_redis_namespace):
    """Shared by this module's tests (each uses keys of its own): starting processes is slow."""
    config = {"model_list": [MODEL], "general_settings": {
        "master_key": MASTER, "database_url": module_postgres_url,
        "redis_url": module_redis_url, "redis_namespace": module_redis_namespace,
        "spend_flush_interval": 0.1}}
    path = tmp_path_factory.mktemp("two-gateways") / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    # Started together: both migrate the new database at once, and must not collide.
    pair = (Gatehouse(path), Gatehouse(path))
    try:
        for gateway in pair:
            gateway.wait_ready()
        yield pair
    finally:
        stopped = [gateway.stop() for gateway in pair]
    for returncode, stderr in stopped:
        assert returncode == 0, stderr
        assert "Traceback" not in stderr, stderr


def add_key(postgres_url, **fields):
    secret = new_key()
    now = time.time()
    with psycopg.connect(postgres_url) as db:
        db.execute(
            f"INSERT INTO gatehouse_keys (key_hash, key_name, created_at, updated_at"
            f"{''.join(', ' + name for name in fields)}) VALUES (%s, %s, %s, %s"
            f"{', %s' * len(fields)})",
            (hash_key(secret), secret[-4:], now, now, *fields.values()))
    return secret


def wait_for_spend_rows(postgres_url, secret, count):
    """Until the gateways have accounted ``count`` calls of ``secret`` (spend counters move
    before the row is written)."""
    deadline = time.monotonic() + 5
    with psycopg.connect(postgres_url, autocommit=True) as db:
        while True:
            (found,) = db.execute("SELECT count(*) FROM gatehouse_spend_logs WHERE key_hash = %s",
                                  (hash_key(secret),)).fetchone()
            if found >= count:
                return
            assert time.monotonic() < deadline, f"{found} of {count} spend rows written"
            time.sleep(0.05)


def test_one_budget_across_gateways(two_gateways, module_postgres_url):
    a, b = two_gateways
    # Three calls fit; each gateway alone has seen too few calls to refuse the fourth.
    secret = add_key(module_postgres_url, max_budget=2.5 * COST)
    for i, gateway in enumerate((a, b, a)):
        status, body = gateway.call(secret)
        assert status == 200, body
        wait_for_spend_rows(module_postgres_url, secret, i + 1)
    for gateway in (b, a):
        status, body = gateway.call(secret)
        assert status == 400, body
        assert body["error"]["type"] == "budget_exceeded"


def test_one_rate_limit_across_gateways(two_gateways, module_postgres_url):
    a, b = two_gateways
    # Rate windows are calendar minutes; a run that straddles two proves nothing, so it is
    # run again with a fresh key.
    for _ in range(2):
        secret = add_key(module_postgres_url, rpm_limit=4)
        minute = int(time.time() // 60)
        statuses = [gateway.call(secret)[0] for gateway in (a, b, a, b, a, b)]
        if int(time.time() // 60) == minute:
            break
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_a_key_revoked_on_one_gateway_is_refused_by_the_other_within_a_second(
        two_gateways, module_postgres_url):
    a, b = two_gateways
    secret = add_key(module_postgres_url)
    # Both gateways have the key cached, in process and in Redis.
    assert a.call(secret)[0] == 200
    assert b.call(secret)[0] == 200

    status, body = a.post("/key/delete", {"keys": [secret]}, MASTER)
    assert status == 200, body

    deadline = time.monotonic() + 1.5
    while (status := b.call(secret)[0]) == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 401


async def test_without_redis_counters_stay_in_each_process(gateway):
    config = {"model_list": [MODEL], "general_settings": {"master_key": MASTER}}
    # Two gateways on one SQLite file, no Redis.
    client_a = await gateway(config)
    client_b = await gateway(config)
    gw_a = client_a.app[GATEWAY]
    assert isinstance(gw_a.cache, LocalCache)

    async def add_key():
        secret = new_key()
        now = time.time()
        await gw_a.store.insert_row("keys", {"key_hash": hash_key(secret), "key_name": "k",
                                             "created_at": now, "updated_at": now,
                                             "rpm_limit": 2})
        return secret

    async def status(client, secret):
        resp = await client.post("/v1/chat/completions",
                                 headers={"Authorization": f"Bearer {secret}"},
                                 json={"model": "priced",
                                       "messages": [{"role": "user", "content": "hello"}]})
        return resp.status

    # Each process enforces the limit on the calls it sees, and only those. (A run that
    # straddles two minutes is run again, as above.)
    for _ in range(2):
        secret = await add_key()
        minute = int(time.time() // 60)
        statuses = [await status(c, secret) for c in (client_a, client_a, client_a, client_b)]
        if int(time.time() // 60) == minute:
            break
    assert statuses == [200, 200, 429, 200]


def wait_for_status(gateway, secret, body, expected):
    """The status ``expected`` within 1.5 s: a change on one gateway reaches the others once
    their in-process copies (1 s) expire."""
    deadline = time.monotonic() + 1.5
    while (status := gateway.post("/v1/chat/completions", body, secret)[0]) != expected \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


def test_an_end_user_blocked_on_one_gateway_is_refused_by_the_other(two_gateways,
                                                                    module_postgres_url):
    a, b = two_gateways
    secret = add_key(module_postgres_url)
    body = {"model": "priced", "messages": [{"role": "user", "content": "hello"}],
            "user": "shared-customer"}
    assert b.post("/v1/chat/completions", body, secret)[0] == 200  # cached as not blocked
    status, _ = a.post("/customer/block", {"user_ids": ["shared-customer"]}, MASTER)
    assert status == 200
    assert wait_for_status(b, secret, body, 400) == 400
    a.post("/customer/unblock", {"user_ids": ["shared-customer"]}, MASTER)
    assert wait_for_status(b, secret, body, 200) == 200


def test_one_end_user_budget_and_one_user_role_across_gateways(two_gateways,
                                                               module_postgres_url):
    a, b = two_gateways
    status, _ = a.post("/customer/new", {"user_id": "budgeted", "max_budget": COST / 2},
                       MASTER)
    assert status == 200
    body = {"model": "priced", "messages": [{"role": "user", "content": "hello"}],
            "user": "budgeted"}
    # Two keys, two gateways: the end user's budget is one.
    first, second = add_key(module_postgres_url), add_key(module_postgres_url)
    assert a.post("/v1/chat/completions", body, first)[0] == 200
    wait_for_spend_rows(module_postgres_url, first, 1)
    status, refused = b.post("/v1/chat/completions", body, second)
    assert status == 400, refused
    assert refused["error"]["type"] == "budget_exceeded"

    # A user made an admin through one gateway is an admin on the other.
    status, made = a.post("/user/new", {"user_id": "promoted"}, MASTER)
    key = made["key"]
    assert b.post("/team/new", {}, key)[0] == 401
    a.post("/user/update", {"user_id": "promoted", "user_role": "proxy_admin"}, MASTER)
    deadline = time.monotonic() + 1.5
    while (status := b.post("/team/new", {}, key)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200
