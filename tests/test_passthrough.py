"""Pass-through endpoints: routes forwarded to another API over real HTTP, with the gateway's
keys, limits, guardrails and spend rows where the endpoint asks for them, and the admin routes
that store endpoints for every gateway."""

import asyncio

import orjson
import pytest
from admin_kit import ADMIN, MASTER, admin_get, admin_post, bearer, both_databases, until
from aiohttp import web
from yarl import URL
from doubles import PLUGINS, guardrail
from gatehouse.app import GATEWAY, create_app
from gatehouse.config import ConfigError, config_from_dict


class Target:
    """Another API: records what it receives; answers it back, fails as told, or streams
    events one at a time as the test releases them."""

    def __init__(self):
        self.received = []
        self.next_event = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.url = ""

    async def handle(self, request):
        body = await request.read()
        self.received.append({"method": request.method, "path": request.path,
                              "query": list(request.query.items()),
                              "headers": {str(k): v for k, v in request.headers.items()},
                              "body": body})
        if request.path.startswith("/status/"):
            status = int(request.path.rsplit("/", 1)[1])
            return web.Response(status=status, text=f"target says {status}")
        if request.path == "/events":
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"data: one\n\n")
            # The second event waits for the test to have read the first through the gateway.
            await self.next_event.wait()
            await response.write(b"data: two\n\n")
            await response.write_eof()
            return response
        return web.json_response({"path": request.path, "answer": "from target"},
                                 headers={"x-target": "yes", "connection": "keep-alive"})

    @property
    def last(self):
        return self.received[-1]


@pytest.fixture
async def target(aiohttp_server):
    served = Target()
    server = await aiohttp_server(served.app)
    served.url = str(server.make_url("")).rstrip("/")
    yield served
    served.next_event.set()


def endpoint(target, path="/v1/rerank", to="/rerank", **fields):
    return {"path": path, "target": target.url + to, **fields}


def settings(*endpoints, **general):
    return {"general_settings": {"pass_through_endpoints": list(endpoints), **general}}


async def settle(client):
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()


# --- forwarding ----------------------------------------------------------------------------------

async def test_forwards_the_body_query_and_headers_configured_ones_winning(
        gateway, target, monkeypatch):
    monkeypatch.setenv("TARGET_API_KEY", "target-secret")
    client = await gateway(settings(endpoint(
        target, forward_headers=True, default_query_params={"version": "2", "region": "eu"},
        headers={"Authorization": "bearer os.environ/TARGET_API_KEY",
                 "x-team": "configured"})))
    body = b'{"query": "capital?", "documents": ["a", "b"]}'
    resp = await client.post("/v1/rerank?top_n=2&version=3", data=body, headers={
        "content-type": "application/json", "x-team": "client", "x-client": "kept",
        "Authorization": "Bearer client-token", "Connection": "x-secret-hop",
        "x-secret-hop": "per-connection", "Proxy-Authorization": "Basic abc"})
    assert resp.status == 200
    assert await resp.json() == {"path": "/rerank", "answer": "from target"}
    assert resp.headers["x-target"] == "yes"
    sent = target.last
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/rerank", body)
    # The client's own value of a parameter beats the default; the other default is added.
    assert sent["query"] == [("top_n", "2"), ("version", "3"), ("region", "eu")]
    headers = sent["headers"]
    assert headers["Authorization"] == "bearer target-secret"
    assert headers["x-team"] == "configured"
    assert headers["x-client"] == "kept"
    assert headers["Content-Type"] == "application/json"
    # Per-connection headers are the gateway's, not the target's.
    for name in ("x-secret-hop", "Proxy-Authorization"):
        assert name not in headers
    assert headers["Host"] != client.host


async def test_without_forward_headers_only_the_configured_ones_go(gateway, target):
    client = await gateway(settings(endpoint(target, headers={"x-api-key": "configured"})))
    resp = await client.put("/v1/rerank", data=b"<doc/>", headers={
        "content-type": "application/xml", "x-client": "dropped", "x-api-key": "client"})
    assert resp.status == 200
    headers = target.last["headers"]
    assert "x-client" not in headers
    assert headers["x-api-key"] == "configured"
    assert headers["Content-Type"] == "application/xml"
    assert (target.last["method"], target.last["body"]) == ("PUT", b"<doc/>")


async def test_subpaths_follow_only_when_included(gateway, target):
    client = await gateway(settings(
        endpoint(target, path="/bria", to="/base/", include_subpath=True),
        endpoint(target, path="/exact", to="/only")))
    resp = await client.get("/bria/v1/text-to-image?size=2")
    assert resp.status == 200
    assert (target.last["path"], target.last["query"]) == ("/base/v1/text-to-image",
                                                           [("size", "2")])
    resp = await client.get("/bria")
    assert target.last["path"] == "/base/"
    # An encoded '..' cannot climb out of the target's path.
    resp = await client.get(URL("/bria/%2e%2e/admin", encoded=True))
    assert resp.status == 400
    assert target.last["path"] == "/base/"
    # Neither a longer name nor a subpath of an exact endpoint is forwarded.
    count = len(target.received)
    for path in ("/briax", "/exact/more"):
        resp = await client.get(path)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "404"
    assert len(target.received) == count


async def test_methods_outside_the_endpoints_are_refused(gateway, target):
    client = await gateway(settings(endpoint(target, methods=["POST"])))
    resp = await client.get("/v1/rerank")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert target.received == []


async def test_event_streams_are_relayed_event_by_event(gateway, target):
    client = await gateway(settings(endpoint(target, path="/live", to="/events")))
    resp = await client.get("/live")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    # The first event arrives while the target still holds back the second: nothing buffers.
    assert await resp.content.readuntil(b"\n\n") == b"data: one\n\n"
    target.next_event.set()
    assert await resp.content.read() == b"data: two\n\n"


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
async def test_target_errors_keep_their_status_and_body(gateway, target, status):
    client = await gateway(settings(endpoint(target, path="/fails", to=f"/status/{status}")))
    resp = await client.post("/fails", json={"a": 1})
    assert resp.status == status
    error = (await resp.json())["error"]
    assert (error["message"], error["code"]) == (f"target says {status}", str(status))


async def test_an_unreachable_target_is_a_502_without_its_address(gateway, unused_tcp_port):
    client = await gateway(settings({"path": "/down",
                                     "target": f"http://127.0.0.1:{unused_tcp_port}/x?k=v"}))
    resp = await client.get("/down")
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert "/down" in error["message"] and str(unused_tcp_port) not in error["message"]


async def test_bodies_over_the_size_limit_are_refused(gateway, target):
    client = await gateway(settings(endpoint(target), max_request_size_mb=0.001))
    resp = await client.post("/v1/rerank", data=b"x" * 4096)
    assert resp.status == 413
    assert target.received == []


# --- keys, limits, guardrails, spend ----------------------------------------------------------------

async def test_auth_endpoints_take_virtual_keys_and_never_forward_them(start, target):
    client = await start(settings(endpoint(target, auth=True, forward_headers=True)))
    resp = await client.post("/v1/rerank", json={"q": 1})
    assert resp.status == 401
    assert (await resp.json())["error"]["message"].startswith("Authentication Error")
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post("/v1/rerank", json={"q": 1},
                             headers={**bearer(key["key"]), "x-api-key": key["key"]})
    assert resp.status == 200
    sent = target.last["headers"]
    assert "Authorization" not in sent and "x-api-key" not in sent
    assert key["key"] not in repr(sent)


async def test_open_endpoints_need_no_key_beside_a_master_key(start, target):
    client = await start(settings(endpoint(target, forward_headers=True)))
    resp = await client.post("/v1/rerank", json={"q": 1},
                             headers={"Authorization": "Bearer the-targets-own-key"})
    assert resp.status == 200
    # Not the gateway's key: the client's credential for the target goes on.
    assert target.last["headers"]["Authorization"] == "Bearer the-targets-own-key"
    # Built-in routes keep asking for a key.
    assert (await client.get("/v1/models")).status == 401


async def test_rate_limits_hold_on_pass_through_calls(start, target):
    client = await start(settings(endpoint(target, auth=True)))
    key = await admin_post(client, "/key/generate", {"rpm_limit": 1})
    assert (await client.post("/v1/rerank", json={}, headers=bearer(key["key"]))).status == 200
    resp = await client.post("/v1/rerank", json={}, headers=bearer(key["key"]))
    assert resp.status == 429
    assert "Rate limit exceeded" in (await resp.json())["error"]["message"]
    assert len(target.received) == 1


async def test_pre_call_guardrails_read_and_block_the_json_body(gateway, target):
    client = await gateway({**settings(endpoint(target, guardrails=["words"])),
                            "guardrails": [guardrail("words", block_word="forbidden"),
                                           guardrail("suffix", default_on=True,
                                                     append=" (checked)")]},
                           plugins=PLUGINS)
    messages = [{"role": "user", "content": "a forbidden word"}]
    resp = await client.post("/v1/rerank", json={"messages": messages})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith("Probe words saw forbidden")
    assert target.received == []
    resp = await client.post("/v1/rerank", json={"messages": [{"role": "user",
                                                               "content": "fine"}]})
    assert resp.status == 200
    # A guardrail's rewrite is what the target gets.
    assert orjson.loads(target.last["body"])["messages"][0]["content"] == "fine (checked)"
    assert resp.headers["x-litellm-applied-guardrails"] == "words,suffix"


@both_databases
async def test_each_call_leaves_a_spend_row_of_its_cost_per_request(start, target):
    client = await start(settings(endpoint(target, auth=True, cost_per_request=0.25)))
    key = await admin_post(client, "/key/generate", {"key_alias": "reranker"})
    ids = []
    for _ in range(2):
        resp = await client.post("/v1/rerank", json={"q": 1}, headers=bearer(key["key"]))
        assert resp.status == 200
        assert resp.headers["x-litellm-response-cost"] == "0.25"
        ids.append(resp.headers["x-request-id"])
    await settle(client)
    [row] = await admin_get(client, "/spend/logs", request_id=ids[0])
    assert (row["call_type"], row["model"], row["spend"]) == ("pass_through_endpoint",
                                                               "unknown", 0.25)
    assert row["metadata"]["user_api_key_alias"] == "reranker"
    info = await admin_get(client, "/key/info", key=key["key"])
    assert info["info"]["spend"] == pytest.approx(0.5)


async def test_failed_calls_cost_nothing(start, target):
    client = await start(settings(endpoint(target, path="/fails", to="/status/500",
                                           auth=True, cost_per_request=1.0)))
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post("/fails", json={}, headers=bearer(key["key"]))
    assert resp.status == 500
    await settle(client)
    [row] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert row["spend"] == 0


async def test_budgets_stop_pass_through_calls(start, target):
    client = await start(settings(endpoint(target, auth=True, cost_per_request=1.0)))
    key = await admin_post(client, "/key/generate", {"max_budget": 1.5})
    for expected in (200, 200, 400):
        resp = await client.post("/v1/rerank", json={}, headers=bearer(key["key"]))
        assert resp.status == expected
        await settle(client)
    assert "Budget has been exceeded" in (await resp.json())["error"]["message"]


# --- config mistakes -----------------------------------------------------------------------------

def build(config):
    return create_app(config_from_dict(config))


@pytest.mark.parametrize(("entry", "general", "says"), [
    ({"path": "/v1/chat/completions", "target": "http://t"}, {},
     "would shadow the gateway's own route /v1/chat/completions"),
    ({"path": "/v1/models/gpt-4o", "target": "http://t", "auth": True},
     {"master_key": MASTER}, "would shadow the gateway's own route /v1/models/{model_id}"),
    ({"path": "/v1", "target": "http://t", "include_subpath": True, "auth": True},
     {"master_key": MASTER}, "would shadow"),
    ({"path": "/key/export", "target": "http://t"}, {"master_key": MASTER},
     "lies under /key, where the gateway's own routes are"),
    ({"path": "/v1/chat/other", "target": "http://t"}, {"master_key": MASTER},
     "lies under /v1/chat"),
    ({"path": "/v1/rerank", "target": "http://t", "auth": True}, {},
     "auth: true needs general_settings.master_key"),
    ({"path": "/x", "target": "module.instance"}, {}, "must be an http:// or https:// URL"),
    ({"path": "/x", "target": "http://t", "headers": {"k": "Bearer os.environ/GH_UNSET_VAR"}},
     {}, "environment variable GH_UNSET_VAR is not set"),
    ({"path": "/x", "target": "http://t", "guardrails": ["nowhere"]}, {},
     "no guardrail is named nowhere"),
    ({"path": "/a/../key", "target": "http://t"}, {}, "'..' segment"),
])
def test_config_mistakes_stop_the_start(entry, general, says):
    with pytest.raises(ConfigError) as refused:
        build(settings(entry, **general))
    assert says in str(refused.value)


def test_a_misspelt_field_is_refused_not_ignored():
    with pytest.raises(ConfigError, match="auht"):
        build(settings({"path": "/x", "target": "http://t", "auht": True}))


def test_two_entries_for_one_path_are_refused():
    with pytest.raises(ConfigError, match="served by an earlier entry"):
        build(settings({"path": "/x", "target": "http://t"}, {"path": "/x", "target": "http://u"}))


def test_langfuse_keys_become_one_basic_credential(monkeypatch):
    monkeypatch.setenv("LF_PK", "pk-1")
    app = build(settings({"path": "/langfuse", "target": "http://t", "headers": {
        "LANGFUSE_PUBLIC_KEY": "os.environ/LF_PK", "LANGFUSE_SECRET_KEY": "sk-2"}}))
    [served] = app[GATEWAY].pass_through.table.endpoints
    assert served.headers == (("Authorization", "Basic cGstMTpzay0y"),)


# --- stored endpoints ----------------------------------------------------------------------------

PATH = "/config/pass_through_endpoint"


async def test_stored_endpoints_are_served_by_every_gateway(two_gateways, target, monkeypatch):
    monkeypatch.setenv("STORED_TARGET_KEY", "from-env")
    first, second = two_gateways
    created = await admin_post(first, PATH, {
        "path": "/cohere", "target": target.url + "/rerank", "include_subpath": True,
        "headers": {"Authorization": "os.environ/STORED_TARGET_KEY",
                    "x-secret": "a-literal-secret-value"}})
    [shown] = created["endpoints"]
    assert shown["headers"] == {"Authorization": "os.environ/STORED_TARGET_KEY",
                                "x-secret": "a-li****"}

    async def served_on_second():
        return (await second.get("/cohere/v2")).status == 200
    await until(served_on_second)
    assert (target.last["path"], target.last["headers"]["Authorization"]) == (
        "/rerank/v2", "from-env")

    listed = await admin_get(second, PATH)
    assert [e["path"] for e in listed["endpoints"]] == ["/cohere"]
    one = await admin_get(second, PATH, endpoint_id=shown["id"])
    assert one["endpoints"] == listed["endpoints"]
    assert "a-literal-secret-value" not in orjson.dumps(listed).decode()

    resp = await second.delete(PATH, params={"endpoint_id": "/cohere"}, headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["endpoints"][0]["id"] == shown["id"]

    async def gone_on_first():
        return (await first.get("/cohere/v2", headers=ADMIN)).status == 404
    await until(gone_on_first)


@both_databases
async def test_stored_endpoints_are_sealed_at_rest(start, target):
    client = await start()
    await admin_post(client, PATH, {"path": "/sealed", "target": target.url,
                                    "headers": {"x-api-key": "plain-secret-123"}})
    store = client.app[GATEWAY].store
    async with store.transaction() as tx:
        rows = await tx.fetchall("SELECT * FROM gatehouse_pass_through")
    assert "plain-secret-123" not in orjson.dumps(rows).decode()
    assert (await client.get("/sealed")).status == 200
    assert target.last["headers"]["x-api-key"] == "plain-secret-123"


async def test_admin_routes_refuse_what_could_not_be_served(start, target):
    client = await start(settings(endpoint(target, path="/from-config")))

    async def refused(method, status, says, **kwargs):
        resp = await client.request(method, PATH, headers=ADMIN, **kwargs)
        assert resp.status == status, await resp.text()
        assert says in orjson.dumps(await resp.json()).decode()

    await refused("POST", 400, "would shadow", json={"path": "/key/generate",
                                                     "target": target.url})
    await refused("POST", 400, "lies under /team", json={"path": "/team/x",
                                                         "target": target.url})
    await refused("POST", 400, "already exists", json={"path": "/from-config",
                                                       "target": target.url})
    await refused("POST", 400, "not set", json={
        "path": "/y", "target": target.url, "headers": {"k": "os.environ/GH_UNSET_VAR"}})
    await refused("POST", 422, "extra_forbidden", json={"path": "/y", "target": target.url,
                                                        "auht": True})
    await refused("DELETE", 400, "Endpoint=/nowhere was not found in pass-through endpoint "
                                 "list.", params={"endpoint_id": "/nowhere"})
    await refused("DELETE", 400, "is set in the config file",
                  params={"endpoint_id": "/from-config"})
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post(PATH, json={"path": "/z", "target": target.url},
                             headers=bearer(key["key"]))
    assert resp.status == 401
    listed = await admin_get(client, PATH)
    assert [e["path"] for e in listed["endpoints"]] == ["/from-config"]


async def test_deleting_with_no_endpoints_says_so(start):
    client = await start()
    resp = await client.delete(PATH, params={"endpoint_id": "/x"}, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == "There are no pass-through endpoints setup."
