"""The verdict cache (``cache_ttl``): a cacheable guardrail's verdicts -- pass, block, rewrite
-- are kept per text, so a conversation's earlier turns never go to the vendor again. In
process without Redis; in Redis, shared by every gateway, with one."""

import pytest
from admin_kit import ADMIN, MASTER, admin_get, both_backends

from doubles import PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY


@pytest.fixture
async def check(fake_vendor):
    """The vendor: flags a text holding "bomb", asks to mask "secret"."""
    vendor = await fake_vendor()
    vendor.decide = lambda path, body: {
        "flagged": any("bomb" in t for t in body["texts"]),
        "mask": "secret" if any("secret" in t for t in body["texts"]) else None}
    return vendor


@pytest.fixture
def cached_gateway(start, check):
    """A gateway on the test's back end (``both_backends``: verdicts in its own memory beside
    SQLite, or in Redis beside Postgres) whose guardrail ``check`` caches its verdicts."""
    async def make(**params):
        return await start({
            "guardrails": [guardrail("check", type_="vendor_check", vendor=check.url + "/v1",
                                     default_on=True, cache_ttl=60, **params)],
            "litellm_settings": {"callbacks": ["prometheus"]}}, plugins=PLUGINS)
    return make


def info(record):
    [entry] = [e for e in record["guardrail_information"] if e["guardrail_name"] == "check"]
    return entry


@both_backends
async def test_a_conversation_sends_the_vendor_only_its_new_messages(cached_gateway, check,
                                                                    fake_upstream):
    client = await cached_gateway()
    messages = []
    for turn in range(1, 11):
        messages.append({"role": "user", "content": f"question {turn}"})
        resp = await client.post("/v1/chat/completions", headers=ADMIN,
                                 json={"model": "gpt-4o", "messages": messages})
        assert resp.status == 200
        messages.append({"role": "assistant", "content": f"answer {turn}"})
    # One vendor call per turn, each with only what the conversation added since the last.
    assert [body["texts"] for body in check.received] == [
        ["question 1"], *([f"answer {t - 1}", f"question {t}"] for t in range(2, 11))]
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    last = info(RECORDS[-1])
    # 17 earlier messages and the rest of the body from the cache; 2 new messages sent.
    assert last["cache"] == {"hits": 18, "misses": 2}
    metrics = await (await client.get("/metrics", headers=ADMIN)).text()
    assert 'gatehouse_guardrail_verdict_cache_total{guardrail_name="check",result="hit"}' \
        in metrics
    await gw.accounting.flush()
    [row] = await admin_get(client, "/spend/logs",
                            request_id=resp.headers["x-request-id"])
    [entry] = row["metadata"]["guardrail_information"]
    assert entry["cache"] == {"hits": 18, "misses": 2}


@both_backends
async def test_a_block_is_cached_with_its_body(cached_gateway, check, fake_upstream, chat):
    client = await cached_gateway()
    first = await client.post("/v1/chat/completions", json=chat("a bomb"), headers=ADMIN)
    second = await client.post("/v1/chat/completions", json=chat("a bomb"), headers=ADMIN)
    assert (first.status, second.status) == (400, 400)
    assert await first.json() == await second.json()
    assert len(check.received) == 1
    assert fake_upstream.received == []


@both_backends
async def test_a_rewrite_is_cached_and_replayed(cached_gateway, check, fake_upstream, chat):
    client = await cached_gateway()
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json=chat("my secret"), headers=ADMIN)
        assert resp.status == 200
        assert fake_upstream.last["messages"][0]["content"] == "my ****"
    assert len(check.received) == 1


@both_backends
async def test_replies_are_cached_in_post_call(cached_gateway, check, fake_upstream, chat):
    fake_upstream.reply = "the secret is out"
    client = await cached_gateway(mode="post_call")
    for text in ("one", "two"):
        resp = await client.post("/v1/chat/completions", json=chat(text), headers=ADMIN)
        assert (await resp.json())["choices"][0]["message"]["content"] == "the **** is out"
    assert len(check.received) == 1


@both_backends
async def test_another_extra_body_is_never_served_from_the_cache(cached_gateway, check,
                                                                 chat):
    client = await cached_gateway()
    for extra in ({"policy": "a"}, {"policy": "b"}, {"policy": "a"}):
        resp = await client.post("/v1/chat/completions", headers=ADMIN, json=chat(
            "hello", guardrails={"check": {"extra_body": extra}}))
        assert resp.status == 200
    assert [body["extra"] for body in check.received] == [{"policy": "a"}, {"policy": "b"}]


@both_backends
async def test_a_failed_vendor_call_is_never_cached(cached_gateway, check, chat):
    client = await cached_gateway(on_error="fail_open")
    check.status = 500
    assert (await client.post("/v1/chat/completions", json=chat("a bomb"),
                              headers=ADMIN)).status == 200
    check.status = 200
    assert (await client.post("/v1/chat/completions", json=chat("a bomb"),
                              headers=ADMIN)).status == 400
    assert len(check.received) == 2


async def test_gateways_sharing_redis_share_verdicts(gateway, postgres_url, redis_url,
                                                     redis_namespace, check, chat):
    config = {"general_settings": {"master_key": MASTER, "database_url": postgres_url,
                                   "redis_url": redis_url, "redis_namespace": redis_namespace},
              "guardrails": [guardrail("check", type_="vendor_check", vendor=check.url + "/v1",
                                       default_on=True, cache_ttl=60)]}
    one = await gateway(config, plugins=PLUGINS)
    two = await gateway(config, plugins=PLUGINS)
    assert (await one.post("/v1/chat/completions", json=chat("a bomb"),
                           headers=ADMIN)).status == 400
    assert (await two.post("/v1/chat/completions", json=chat("a bomb"),
                           headers=ADMIN)).status == 400
    assert len(check.received) == 1
