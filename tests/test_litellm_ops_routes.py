"""``GET /health`` (deployment probes, cached per ``health_check_interval``),
``/health/readiness`` with LiteLLM's body, and the public ``/``, ``/routes`` and ``/test``."""

import asyncio

from admin_kit import ADMIN, admin_post, bearer, both_databases


def probes(fake_upstream):
    return sum(1 for body in fake_upstream.received if body.get("max_tokens") == 1)


async def test_health_lists_healthy_and_unhealthy_deployments(start, fake_upstream):
    client = await start({"model_list": [
        fake_upstream.model_entry("gpt-4o", extra_token="tok-1234567890abcdef"),
        {"model_name": "down", "params": {"model": "openai/down", "api_base":
                                          "http://127.0.0.1:9/v1", "api_key": "sk-hidden"}},
        {"model_name": "openai/*", "params": {"model": "openai/*", "api_base": "x"}},
    ]})
    key = (await admin_post(client, "/key/generate", {"models": ["mock-echo"]}))["key"]
    # Any valid key, whatever models it may use.
    resp = await client.get("/health", headers=bearer(key))
    assert resp.status == 200
    body = await resp.json()
    assert (body["healthy_count"], body["unhealthy_count"]) == (1, 1)
    healthy, = body["healthy_endpoints"]
    assert healthy["model"] == "openai/gpt-4o" and healthy["api_base"] == fake_upstream.url
    assert "api_key" not in healthy
    assert healthy["extra_token"] == "tok-" + "*" * 12 + "cdef"
    unhealthy, = body["unhealthy_endpoints"]
    assert unhealthy["model"] == "openai/down" and "unreachable" in unhealthy["error"]
    assert "sk-hidden" not in await resp.text()
    assert probes(fake_upstream) == 1

    # Within health_check_interval the last result is answered again: no new probe.
    again = await (await client.get("/health", params={"model": "gpt-4o"},
                                    headers=ADMIN)).json()
    assert again["healthy_count"] == 1 and again["unhealthy_count"] == 0
    assert probes(fake_upstream) == 1

    resp = await client.get("/health", params={"model_id": "nope"}, headers=ADMIN)
    assert resp.status == 404
    assert await resp.json() == {"detail": "Model with ID nope not found"}
    assert (await client.get("/health")).status == 401


async def test_health_probes_again_after_the_interval(start, fake_upstream):
    client = await start({"general_settings": {"health_check_interval": 0.001}})
    for _ in range(2):
        await asyncio.sleep(0.01)  # longer than the interval
        body = await (await client.get("/health", params={"model": "gpt-4o"},
                                       headers=ADMIN)).json()
        assert body["healthy_count"] == 1
    assert probes(fake_upstream) == 2


async def test_background_health_checks_are_answered_without_probing(start, fake_upstream):
    client = await start({"general_settings": {"background_health_checks": True,
                                               "health_check_interval": 3600}})

    async def first_round():
        while probes(fake_upstream) == 0:
            await asyncio.sleep(0.01)

    # The first round runs at start, off the request path.
    await asyncio.wait_for(first_round(), 10)
    fake_upstream.fail(500)
    for _ in range(3):
        body = await (await client.get("/health", headers=ADMIN)).json()
        assert body["healthy_count"] == 2 and body["unhealthy_count"] == 0
    assert probes(fake_upstream) == 1


async def test_background_health_checks_probe_again_every_interval(start, fake_upstream):
    client = await start({"general_settings": {"background_health_checks": True,
                                               "health_check_interval": 0.05}})
    fake_upstream.fail(500)
    fake_upstream.received.clear()

    async def probed_twice():
        # Nothing asks for /health meanwhile: the rounds run by themselves.
        while probes(fake_upstream) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(probed_twice(), 10)
    body = await (await client.get("/health", params={"model": "gpt-4o"},
                                   headers=ADMIN)).json()
    assert body["unhealthy_count"] == 1
    assert "upstream says no" in body["unhealthy_endpoints"][0]["error"]


@both_databases
async def test_readiness_names_database_and_cache(start, database, request):
    config = {}
    if database:
        config = {"general_settings": {"redis_url": request.getfixturevalue("redis_url"),
                                       "redis_namespace":
                                           request.getfixturevalue("redis_namespace")}}
    client = await start(config)
    body = await (await client.get("/health/readiness")).json()
    assert body["status"] == body["db"] == "connected"
    assert body["cache"] == ("redis" if database else None)
    assert body["litellm_version"] == "1.78.5" and body["use_aiohttp_transport"] is True
    assert "last_updated" in body


async def test_readiness_without_a_database(gateway):
    client = await gateway()
    body = await (await client.get("/health/readiness")).json()
    assert body == {"status": "healthy", "db": "Not connected", "cache": None,
                    "litellm_version": "1.78.5", "success_callbacks": [],
                    "use_aiohttp_transport": True}


async def test_public_info_routes(start):
    client = await start()
    # The Swagger UI, as in LiteLLM (tests/test_api_docs.py: "LiteLLM: RUNNING" with NO_DOCS).
    assert (await client.get("/")).content_type == "text/html"
    assert await (await client.get("/test")).json() == {"route": "/test"}
    for path in ("/health/liveliness", "/health/liveness"):
        assert await (await client.get(path)).json() == "I'm alive!"
        resp = await client.options(path)
        assert resp.status == 200 and resp.headers["Allow"] == "GET, OPTIONS"
    routes = (await (await client.get("/routes")).json())["routes"]
    models = next(r for r in routes if r["path"] == "/v1/models")
    assert models["methods"] == ["GET"] and models["name"] == "list_models"
    assert {"/openai/deployments/{model}/chat/completions", "/health"} <= {
        r["path"] for r in routes}
