"""Virtual keys through the admin API: the key a client gets works at once, carries its limits
and guardrails into every call, changes and revocations apply immediately, and the secret is
shown exactly once."""

import hashlib
import time
from datetime import datetime

import pytest
from admin_kit import ADMIN, MASTER, PRICED, bearer, both_databases
from doubles import PLUGINS, Probe, guardrail
from gatehouse import hookimpl
from gatehouse.app import GATEWAY
from gatehouse.store.database import StoreUnavailable

COST_OF_ONE_CALL = 5 * 0.001 + 5 * 0.002


def assert_openai_error(body, status, kind=None):
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == str(status)
    if kind is not None:
        assert body["error"]["type"] == kind


async def generate(client, **fields):
    resp = await client.post("/key/generate", json=fields, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@both_databases
async def test_a_generated_key_calls_and_its_spend_shows_in_key_info(start, fake_upstream,
                                                                     chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    made = await generate(client, key_alias="billing-app", metadata={"owner": "billing"})
    secret = made["key"]
    assert secret.startswith("sk-")
    assert made["token"] == hashlib.sha256(secret.encode()).hexdigest()
    assert made["key_name"] == f"sk-...{secret[-4:]}"
    assert (made["key_alias"], made["metadata"], made["spend"]) == (
        "billing-app", {"owner": "billing"}, 0)

    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(secret))
    assert resp.status == 200, await resp.text()
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()

    for named_by in (secret, made["token"]):
        resp = await client.get("/key/info", params={"key": named_by}, headers=ADMIN)
        assert resp.status == 200
        body = await resp.json()
        assert body["key"] == made["token"]
        assert body["info"]["spend"] == pytest.approx(COST_OF_ONE_CALL)
        assert body["info"]["key_alias"] == "billing-app"
        assert secret not in await resp.text()


@both_databases
async def test_the_secret_is_shown_once_and_never_again(start, fake_upstream, chat):
    client = await start({"settings": {"store_audit_logs": True}})
    made = await generate(client, models=["gpt-4o"])
    secret = made["key"]
    resp = await client.post("/key/update", json={"key": secret, "max_budget": 5.0},
                             headers=ADMIN)
    assert resp.status == 200
    updated = await resp.text()
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(secret))
    assert resp.status == 200
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()

    seen = [updated]
    for path, params in (("/key/info", {"key": secret}),
                         ("/key/list", {"return_full_object": "true"}),
                         ("/key/list", {}),
                         ("/audit/logs", {}),
                         ("/spend/logs", {"api_key": secret})):
        resp = await client.get(path, params=params, headers=ADMIN)
        assert resp.status == 200, path
        seen.append(await resp.text())
    assert made["token"] in seen[3]  # the listing names the key by its hash
    assert "spend" in seen[5]  # the spend log found the call by the key
    for text in seen:
        assert secret not in text
        assert secret[3:] not in text


@both_databases
async def test_update_and_delete_take_effect_on_the_next_call(start, chat):
    client = await start()
    made = await generate(client, models=["gpt-4o"])
    key = bearer(made["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200

    resp = await client.post("/key/update", json={"key": made["key"], "models": ["mock-echo"]},
                             headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["models"] == ["mock-echo"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.status == 401
    assert "This key can only access models=['mock-echo']" in (await resp.json())[
        "error"]["message"]
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"), headers=key)
    assert resp.status == 200

    resp = await client.post("/key/delete", json={"keys": [made["key"]]}, headers=ADMIN)
    assert resp.status == 200
    assert await resp.json() == {"deleted_keys": [made["key"]]}
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"), headers=key)
    assert resp.status == 401
    assert_openai_error(await resp.json(), 401, "auth_error")
    resp = await client.get("/key/info", params={"key": made["token"]}, headers=ADMIN)
    assert resp.status == 404


async def test_blocking_a_key_refuses_it_and_unblocking_restores_it(start, chat):
    client = await start()
    made = await generate(client)
    resp = await client.post("/key/update", json={"key": made["token"], "blocked": True},
                             headers=ADMIN)
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401
    await client.post("/key/update", json={"key": made["token"], "blocked": False},
                      headers=ADMIN)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200


@both_databases
async def test_max_budget_refuses_calls_once_spent(start, fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    made = await generate(client, max_budget=COST_OF_ONE_CALL / 2)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body, 400, "budget_exceeded")
    assert "Budget has been exceeded" in body["error"]["message"]
    assert len(fake_upstream.received) == 1


async def test_rpm_limit_refuses_the_extra_request(start, fake_upstream, chat):
    client = await start()
    made = await generate(client, rpm_limit=1)
    statuses = []
    # Three calls: however the minute boundaries fall, two of them share a window.
    for _ in range(3):
        resp = await client.post("/v1/chat/completions", json=chat(),
                                 headers=bearer(made["key"]))
        statuses.append(resp.status)
        if resp.status == 429:
            assert_openai_error(await resp.json(), 429, "rate_limit_error")
    assert statuses[0] == 200
    assert 429 in statuses
    assert len(fake_upstream.received) == statuses.count(200)


async def test_a_keys_guardrails_run_on_every_call_it_makes(start, fake_upstream, chat):
    client = await start({"guardrails": [guardrail("key-guard", block_word="forbidden"),
                                         guardrail("unused", block_word="hello")]},
                         plugins=PLUGINS)
    guarded = await generate(client, guardrails=["key-guard"])
    plain = await generate(client)

    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(guarded["key"]))
    assert resp.status == 200
    assert resp.headers["x-gatehouse-applied-guardrails"] == "key-guard"
    resp = await client.post("/v1/chat/completions", json=chat("forbidden"),
                             headers=bearer(guarded["key"]))
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["error"] == "Probe key-guard saw forbidden"

    resp = await client.post("/v1/chat/completions", json=chat("forbidden"),
                             headers=bearer(plain["key"]))
    assert resp.status == 200
    assert "x-gatehouse-applied-guardrails" not in resp.headers

    # Added by /key/update, a guardrail applies from the next call.
    resp = await client.post("/key/update", json={"key": plain["key"], "guardrails": [
        "key-guard"]}, headers=ADMIN)
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=chat("forbidden"),
                             headers=bearer(plain["key"]))
    assert resp.status == 400


class Switchable(Probe):
    """A guardrail a key can switch off with ``"permissions": {"switchable_check": false}``."""

    permission = "switchable_check"


class SwitchablePlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("switchable", Switchable)


async def test_a_permission_set_false_switches_its_guardrail_off_for_the_key(start, chat):
    client = await start({"guardrails": [guardrail("checker", type_="switchable",
                                                   default_on=True, block_word="secret")]},
                         plugins=[("switchable-plugin", SwitchablePlugin())])
    exempt = await generate(client, permissions={"switchable_check": False})
    checked = await generate(client)

    resp = await client.post("/v1/chat/completions", json=chat("my secret"),
                             headers=bearer(exempt["key"]))
    assert resp.status == 200
    assert "x-gatehouse-applied-guardrails" not in resp.headers
    resp = await client.post("/v1/chat/completions", json=chat("my secret"),
                             headers=bearer(checked["key"]))
    assert resp.status == 400

    resp = await client.post("/key/update", json={
        "key": exempt["key"], "permissions": {"switchable_check": True}}, headers=ADMIN)
    assert resp.status == 200
    resp = await client.post("/v1/chat/completions", json=chat("my secret"),
                             headers=bearer(exempt["key"]))
    assert resp.status == 400


async def test_a_chosen_key_works_and_must_be_unique(start, chat):
    client = await start()
    chosen = "sk-chosen-by-the-admin-0001"
    made = await generate(client, key=chosen)
    assert made["key"] == chosen
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(chosen))
    assert resp.status == 200
    resp = await client.post("/key/generate", json={"key": chosen}, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "key"


@pytest.mark.parametrize("chosen", ["not-an-sk-key", "sk-", MASTER, "sk-a", "sk-1234"])
async def test_unusable_chosen_keys_are_refused(start, chosen):
    client = await start()
    resp = await client.post("/key/generate", json={"key": chosen}, headers=ADMIN)
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body, 400)
    assert body["error"]["param"] == "key"
    assert MASTER not in await resp.text()


async def test_duration_sets_when_the_key_expires(start, chat):
    client = await start()
    before = time.time()
    made = await generate(client, duration="2h")
    expires = datetime.fromisoformat(made["expires"]).timestamp()
    assert before + 2 * 3600 <= expires <= time.time() + 2 * 3600
    assert (await generate(client))["expires"] is None

    expired = await generate(client, duration="0s")
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(expired["key"]))
    assert resp.status == 401
    assert "Expired Key" in (await resp.json())["error"]["message"]


@both_databases
async def test_key_list_filters_by_team_and_user_and_pages(start):
    client = await start()
    resp = await client.post("/team/new", json={"team_alias": "listing"}, headers=ADMIN)
    team_id = (await resp.json())["team_id"]
    in_team = [(await generate(client, team_id=team_id))["token"] for _ in range(3)]
    user_key = (await generate(client, user_id="list-user"))["token"]

    resp = await client.get("/key/list", params={"team_id": team_id}, headers=ADMIN)
    assert sorted((await resp.json())["keys"]) == sorted(in_team)
    resp = await client.get("/key/list", params={"user_id": "list-user"}, headers=ADMIN)
    assert (await resp.json())["keys"] == [user_key]

    pages = []
    for page in (1, 2):
        resp = await client.get("/key/list", params={"team_id": team_id, "size": "2",
                                                     "page": str(page)}, headers=ADMIN)
        body = await resp.json()
        assert body["current_page"] == page
        pages.append(body["keys"])
    assert [len(p) for p in pages] == [2, 1]
    assert sorted(pages[0] + pages[1]) == sorted(in_team)

    resp = await client.get("/key/list", params={"user_id": "list-user",
                                                 "return_full_object": "true"}, headers=ADMIN)
    [full] = (await resp.json())["keys"]
    assert (full["token"], full["user_id"]) == (user_key, "list-user")


@both_databases
async def test_unknown_keys_are_404_and_a_partial_delete_deletes_nothing(start, chat):
    client = await start()
    made = await generate(client)
    for method, path, kwargs in (
            ("GET", "/key/info", {"params": {"key": "sk-never-issued-0000"}}),
            ("POST", "/key/update", {"json": {"key": "sk-never-issued-0000", "rpm_limit": 1}}),
            ("POST", "/key/delete", {"json": {"keys": [made["key"], "sk-never-issued-0000"]}})):
        resp = await client.request(method, path, headers=ADMIN, **kwargs)
        assert resp.status == 404, path
        body = await resp.json()
        assert_openai_error(body, 404, "not_found_error")
        assert "sk-...0000" in body["error"]["message"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200


ADMIN_ROUTES = [("POST", "/key/generate"), ("POST", "/key/update"), ("GET", "/key/info"),
                ("POST", "/key/delete"), ("GET", "/key/list"), ("POST", "/team/new"),
                ("POST", "/team/update"), ("POST", "/team/delete"),
                ("POST", "/customer/block"), ("POST", "/customer/unblock"),
                ("POST", "/user/unblock"), ("GET", "/spend/tags"), ("GET", "/spend/logs"),
                ("GET", "/audit/logs")]


async def test_admin_routes_refuse_a_virtual_key_and_no_key(start):
    client = await start({"settings": {"store_audit_logs": True}})
    made = await generate(client)
    for method, path in ADMIN_ROUTES:
        for headers in ({}, bearer(made["key"])):
            resp = await client.request(method, path, json={"keys": [made["key"]]},
                                        headers=headers)
            assert resp.status == 401, (path, headers)
            assert_openai_error(await resp.json(), 401, "auth_error")
    # Nothing was changed by the refused calls.
    resp = await client.get("/key/info", params={"key": made["key"]}, headers=ADMIN)
    assert resp.status == 200
    resp = await client.get("/audit/logs", headers=ADMIN)
    assert [row["action"] for row in await resp.json()] == ["created"]


async def test_a_database_outage_is_a_503_not_a_500(start, monkeypatch):
    client = await start()

    async def unreachable(*args, **kwargs):
        raise StoreUnavailable("the test pulled the plug")

    monkeypatch.setattr(client.app[GATEWAY].store, "list_rows", unreachable)
    resp = await client.get("/key/list", headers=ADMIN)
    assert resp.status == 503
    assert_openai_error(await resp.json(), 503, "service_unavailable")


async def test_admin_routes_need_a_master_key_to_be_configured(gateway):
    client = await gateway()
    resp = await client.post("/key/generate", json={})
    assert resp.status == 403
    assert "master_key" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize("path,raw,param,needle", [
    ("/key/generate", b"{not json", None, "not valid JSON"),
    ("/key/generate", b"[1]", None, "JSON object"),
    ("/key/generate", b'{"models": "gpt-4o"}', "models", "'models'"),
    ("/key/generate", b'{"max_budget": "5"}', "max_budget", "'max_budget'"),
    ("/key/generate", b'{"max_budget": -1}', "max_budget", "'max_budget'"),
    ("/key/generate", b'{"rpm_limit": 1.5}', "rpm_limit", "'rpm_limit'"),
    ("/key/generate", b'{"metadata": []}', "metadata", "'metadata'"),
    ("/key/generate", b'{"guardrails": [1]}', "guardrails", "'guardrails[0]'"),
    ("/key/generate", b'{"duration": "5 weeks"}', "duration", "'duration'"),
    ("/key/generate", b'{"max_buget": 5}', "max_buget", "Unknown parameter: 'max_buget'"),
    ("/key/generate", b'{"team_id": "no-such-team"}', "team_id", "no-such-team"),
    ("/key/generate", b'{"guardrails": ["nope"]}', "guardrails", "nope"),
    ("/key/update", b'{"models": []}', "key", "Missing required parameter: 'key'"),
    ("/key/update", b'{"key": "sk-x"}', None, "Nothing to update"),
    ("/key/update", b'{"key": "sk-x", "models": null}', "models", "'models'"),
    ("/key/delete", b'{"keys": "sk-x"}', "keys", "'keys'"),
    ("/key/delete", b'{"keys": []}', "keys", "'keys'"),
])
async def test_bad_input_is_a_400_naming_the_field(start, path, raw, param, needle):
    client = await start()
    resp = await client.post(path, data=raw, headers={**ADMIN,
                                                      "content-type": "application/json"})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert_openai_error(body, 400, "invalid_request_error")
    assert body["error"]["param"] == param
    assert needle in body["error"]["message"]


@pytest.mark.parametrize("params,param", [
    ({}, "key"), ({"page": "0"}, "page"), ({"size": "1000"}, "size"), ({"page": "x"}, "page")])
async def test_bad_query_parameters_are_a_400(start, params, param):
    client = await start()
    path = "/key/info" if param == "key" else "/key/list"
    resp = await client.get(path, params=params, headers=ADMIN)
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body, 400)
    assert body["error"]["param"] == param


async def test_a_key_limited_to_some_models_lists_only_those(start, fake_upstream):
    client = await start({"model_list": [
        fake_upstream.model_entry("gpt-4o"), {"model_name": "mock-echo",
                                              "params": {"model": "mock/echo"}}]})
    limited = await generate(client, models=["mock-echo"])
    listed = await (await client.get("/v1/models", headers=bearer(limited["key"]))).json()
    assert [m["id"] for m in listed["data"]] == ["mock-echo"]
    listed = await (await client.get("/v1/models", headers=ADMIN)).json()
    assert sorted(m["id"] for m in listed["data"]) == ["gpt-4o", "mock-echo"]
