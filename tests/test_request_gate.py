"""The gate in front of every call: client address allow-list (and the one proxy header it
trusts), rate limits and the headers that tell a client about them, and the request IP in the
spend log."""

import pytest

from admin_kit import ADMIN, admin_get, admin_post, bearer
from gatehouse.config import ConfigError
from gatehouse.testing import GATEWAY


async def test_allowed_ips_refuses_other_addresses(gateway, chat):
    client = await gateway({"general_settings": {"allowed_ips": ["10.0.0.0/8"]}})
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 403
    assert "127.0.0.1 not allowed" in (await resp.json())["error"]["message"]
    # A forwarded-for header is not trusted unless configured.
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-Forwarded-For": "10.1.2.3"})
    assert resp.status == 403


# The test client connects from 127.0.0.1: that is the proxy the header is believed from.
PROXIED = {"allowed_ips": ["10.0.0.0/8"], "trusted_proxy_header": "X-Forwarded-For",
           "trusted_proxies": ["127.0.0.1", "172.16.0.0/12"]}


@pytest.mark.parametrize("forwarded,status", [
    ("10.1.2.3", 200),
    ("192.168.1.1", 403),
    # A client's own entries sit left of what the trusted proxies appended.
    ("10.9.9.9, 192.168.1.1", 403),
    ("10.9.9.9, 192.168.1.1, 172.16.0.5", 403),
    ("192.168.1.1, 10.1.2.3, 172.16.0.5", 200),
    ("garbage, 10.1.2.3", 200),
    ("10.1.2.3, garbage", 403),
    ("::ffff:10.1.2.3", 200),
    ("10.1.2.3, ::ffff:172.16.0.5", 200),
])
async def test_the_client_is_the_right_most_address_no_trusted_proxy_wrote(
        gateway, chat, forwarded, status):
    client = await gateway({"general_settings": PROXIED})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-Forwarded-For": forwarded})
    assert resp.status == status


async def test_the_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(gateway, chat):
    client = await gateway({"general_settings": {**PROXIED, "trusted_proxies": ["10.0.0.1"]}})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-Forwarded-For": "10.1.2.3"})
    assert resp.status == 403
    assert "127.0.0.1 not allowed" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("setting", [{"trusted_proxy_header": "X-Forwarded-For"},
                                     {"use_x_forwarded_for": True}])
async def test_a_proxy_header_without_trusted_proxies_refuses_to_start(gateway, setting):
    with pytest.raises(ConfigError) as err:
        await gateway({"general_settings": {"allowed_ips": ["10.0.0.0/8"], **setting}})
    assert "trusted_proxies" in str(err.value)
    assert f"general_settings.{next(iter(setting))}" in str(err.value)


async def test_tpm_limit_refuses_once_the_window_is_used(start, fake_upstream, chat):
    client = await start()
    key = (await admin_post(client, "/key/generate", {"tpm_limit": 12}))["key"]
    gateway = client.app[GATEWAY]
    # The fake upstream reports 5 prompt + 5 completion tokens a call.
    for _ in range(2):
        resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
        assert resp.status == 200
        await gateway.call_log.drain()
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
    assert resp.status == 429
    assert "Limit type: tokens. Current limit: " in (await resp.json())["error"]["message"]
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert resp.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_keyed_replies_carry_the_tighter_of_key_and_team_limits(start, fake_upstream,
                                                                      chat):
    client = await start()
    team = await admin_post(client, "/team/new", {"rpm_limit": 2, "tpm_limit": 1000})
    key = (await admin_post(client, "/key/generate", {"team_id": team["team_id"],
                                                      "rpm_limit": 5}))["key"]
    seen = []
    for stream in (False, True):
        resp = await client.post("/v1/chat/completions", json=chat(stream=stream),
                                 headers=bearer(key))
        await resp.read()
        assert resp.status == 200
        seen.append({name: resp.headers[f"x-ratelimit-{name}"] for name in (
            "limit-requests", "remaining-requests", "limit-tokens", "remaining-tokens")})
    # The team's 2 requests a minute bind before the key's 5.
    assert [s["limit-requests"] for s in seen] == ["2", "2"]
    assert [s["remaining-requests"] for s in seen] == ["1", "0"]
    assert seen[0]["limit-tokens"] == "1000"

    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
    assert resp.status == 429
    assert "Limit type: requests. Current limit: 2, Remaining: 0" in (await resp.json())[
        "error"]["message"]
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert (resp.headers["x-ratelimit-limit-requests"],
            resp.headers["x-ratelimit-remaining-requests"]) == ("2", "0")


async def test_a_key_without_limits_gets_no_rate_limit_headers_of_the_gateways(start, chat):
    client = await start()
    key = (await admin_post(client, "/key/generate", {}))["key"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
    assert resp.status == 200
    assert not [h for h in resp.headers if h.lower().startswith("x-ratelimit-")]


@pytest.mark.parametrize("status", [200, 429])
async def test_the_upstreams_rate_limit_advice_is_passed_through(gateway, fake_upstream, chat,
                                                                 status):
    fake_upstream.response_headers = {"x-ratelimit-remaining-requests": "41",
                                      "x-ratelimit-reset-tokens": "6ms", "retry-after": "7",
                                      "x-upstream-internal": "not for clients"}
    if status == 429:
        fake_upstream.fail(429)
    client = await gateway()
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == status
    assert resp.headers["x-ratelimit-remaining-requests"] == "41"
    assert resp.headers["x-ratelimit-reset-tokens"] == "6ms"
    assert resp.headers["retry-after"] == "7"
    assert "x-upstream-internal" not in resp.headers


async def test_the_gateways_own_limits_outrank_the_upstreams(start, fake_upstream, chat):
    fake_upstream.response_headers = {"x-ratelimit-remaining-requests": "9999"}
    client = await start()
    key = (await admin_post(client, "/key/generate", {"rpm_limit": 3}))["key"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key))
    assert resp.headers["x-ratelimit-remaining-requests"] == "2"


async def test_spend_log_records_the_request_ip(start, fake_upstream, chat):
    client = await start({"general_settings": {"trusted_proxy_header": "X-Real-IP",
                                               "trusted_proxies": ["127.0.0.1"]}})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={**ADMIN, "X-Real-IP": "203.0.113.7"})
    request_id = resp.headers["x-request-id"]
    await client.app[GATEWAY].call_log.drain()
    await client.app[GATEWAY].accounting.flush()
    [row] = await admin_get(client, "/spend/logs", request_id=request_id)
    assert row["requester_ip_address"] == "203.0.113.7"
