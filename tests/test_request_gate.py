"""The gate in front of every call: client address allow-list (and the one proxy header it
trusts), tokens-per-minute limits, and the request IP in the spend log."""

from admin_kit import ADMIN, admin_get, admin_post, bearer
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


async def test_trusted_proxy_header_names_the_client(gateway, chat):
    client = await gateway({"general_settings": {
        "allowed_ips": ["10.0.0.0/8"], "trusted_proxy_header": "X-Forwarded-For"}})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-Forwarded-For": "10.1.2.3, 127.0.0.1"})
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={"X-Forwarded-For": "192.168.1.1"})
    assert resp.status == 403


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
    assert "tokens per minute" in (await resp.json())["error"]["message"]


async def test_spend_log_records_the_request_ip(start, fake_upstream, chat):
    client = await start({"general_settings": {"trusted_proxy_header": "X-Real-IP"}})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers={**ADMIN, "X-Real-IP": "203.0.113.7"})
    request_id = resp.headers["x-request-id"]
    await client.app[GATEWAY].call_log.drain()
    await client.app[GATEWAY].accounting.flush()
    [row] = await admin_get(client, "/spend/logs", request_id=request_id)
    assert row["requester_ip_address"] == "203.0.113.7"
