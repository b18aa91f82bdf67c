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
from gatehouse.access import durations
from gatehouse.app import GATEWAY
from gatehouse.store.backend import StoreUnavailable

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
    assert_openai_error(await resp.json(), 401, "token_not_found_in_db")
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
            assert_openai_error(await resp.json(), 429, "None")
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


async def test_a_chosen_key_works_and_asking_for_it_again_changes_nothing(start, chat):
    client = await start()
    chosen = "sk-chosen-by-the-admin-0001"
    made = await generate(client, key=chosen, models=["gpt-4o"])
    assert made["key"] == chosen
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(chosen))
    assert resp.status == 200
    # LiteLLM's quirk: 200, and the stored key keeps what it had.
    again = await generate(client, key=chosen, models=["mock-echo"])
    assert (again["token"], again["models"]) == (made["token"], ["gpt-4o"])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(chosen))
    assert resp.status == 200


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
    # Generated keys expire on a calendar boundary, as LiteLLM's do; updates count from now.
    expires = datetime.fromisoformat(made["expires"]).timestamp()
    assert expires in (durations.next_reset("2h", before), durations.next_reset("2h",
                                                                                time.time()))
    assert made["duration"] == "2h"
    assert (await generate(client))["expires"] is None
    before = time.time()
    resp = await client.post("/key/update", json={"key": made["key"], "duration": "2h"},
                             headers=ADMIN)
    expires = datetime.fromisoformat((await resp.json())["expires"]).timestamp()
    assert before + 2 * 3600 <= expires <= time.time() + 2 * 3600

    expired = await generate(client, duration="0s")
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(expired["key"]))
    assert resp.status == 400
    body = await resp.json()
    assert_openai_error(body, 400, "expired_key")
    assert body["error"]["message"].startswith("Authentication Error - Expired Key. Key Expiry "
                                               "time ")
    assert body["error"]["param"] == expired["token"]


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
async def test_unknown_keys_get_litellms_errors_and_a_partial_delete_deletes_nothing(start,
                                                                                     chat):
    client = await start()
    made = await generate(client)
    for method, path, kwargs, status, message in (
            ("GET", "/key/info", {"params": {"key": "sk-never-issued-0000"}}, 404,
             "Key not found in database"),
            ("POST", "/key/update", {"json": {"key": "sk-never-issued-0000", "rpm_limit": 1}},
             401, "Authentication Error: invalid user key - user key does not exist in db. "
                  "User Key=sk-...0000"),
            ("POST", "/key/delete", {"json": {"keys": [made["key"], "sk-never-issued-0000"]}},
             404, "Key not found: sk-...0000"),
            ("POST", "/key/delete", {"json": {"key_aliases": ["never-made"]}}, 404,
             "{'error': 'No keys found'}"),
            ("POST", "/key/regenerate", {"json": {"key": "sk-never-issued-0000"}}, 404,
             "{'error': 'Key sk-...0000 not found.'}"),
            ("POST", "/key/block", {"json": {"key": "sk-never-issued-0000"}}, 404,
             "Key not found: sk-...0000")):
        resp = await client.request(method, path, headers=ADMIN, **kwargs)
        assert resp.status == status, path
        body = await resp.json()
        assert_openai_error(body, status)
        assert body["error"]["message"] == message
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200


ADMIN_ROUTES = [("POST", "/key/generate"), ("POST", "/key/update"),
                ("POST", "/key/delete"), ("POST", "/key/regenerate"), ("POST", "/key/block"),
                ("POST", "/key/unblock"), ("POST", "/key/service-account/generate"),
                ("POST", "/team/new"),
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


@pytest.mark.parametrize("path,raw,kind,loc", [
    ("/key/generate", b"{not json", "json_invalid", ["body", 1]),
    ("/key/generate", b"", "missing", ["body"]),
    ("/key/generate", b"[1]", "model_attributes_type", ["body"]),
    ("/key/generate", b'{"models": "gpt-4o"}', "list_type", ["body", "models"]),
    ("/key/generate", b'{"max_budget": "5"}', "float_type", ["body", "max_budget"]),
    ("/key/generate", b'{"max_budget": -1}', "greater_than_equal", ["body", "max_budget"]),
    ("/key/generate", b'{"rpm_limit": 1.5}', "int_type", ["body", "rpm_limit"]),
    ("/key/generate", b'{"metadata": []}', "dict_type", ["body", "metadata"]),
    ("/key/generate", b'{"guardrails": [1]}', "string_type", ["body", "guardrails", 0]),
    ("/key/generate", b'{"duration": "5 weeks"}', "value_error", ["body", "duration"]),
    ("/key/generate", b'{"budget_duration": "monthly"}', "value_error",
     ["body", "budget_duration"]),
    ("/key/generate", b'{"key_type": "admin"}', "literal_error", ["body", "key_type"]),
    ("/key/generate", b'{"model_max_budget": {"gpt-4o": {"time_period": "1d"}}}', "missing",
     ["body", "model_max_budget", "gpt-4o", "budget_limit"]),
    ("/key/update", b'{"models": []}', "missing", ["body", "key"]),
    ("/key/update", b'{"key": "sk-x", "temp_budget_increase": 5}', "value_error", ["body"]),
    ("/key/delete", b'{"keys": "sk-x"}', "list_type", ["body", "keys"]),
    ("/key/delete", b'{"keys": []}', "value_error", ["body"]),
    ("/key/delete", b'{}', "value_error", ["body"]),
    ("/key/block", b'{}', "missing", ["body", "key"]),
])
async def test_bad_input_is_a_422_in_the_validation_shape(start, path, raw, kind, loc):
    client = await start()
    resp = await client.post(path, data=raw, headers={**ADMIN,
                                                      "content-type": "application/json"})
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert set(body) == {"detail"}
    [problem] = body["detail"]
    assert (problem["type"], problem["loc"]) == (kind, loc)
    assert {"msg", "input"} <= set(problem)
    if loc == ["body"] and kind == "value_error":
        assert problem["msg"].startswith("Value error, ")


async def test_model_level_messages_are_litellms(start):
    client = await start()
    for path, body, msg in (
            ("/key/delete", {}, "Value error, At least one of 'keys' or 'key_aliases' must be "
                                "provided."),
            ("/key/update", {"key": "sk-x", "temp_budget_expiry": "2030-01-01T00:00:00Z"},
             "Value error, temp_budget_increase and temp_budget_expiry must be set together")):
        resp = await client.post(path, json=body, headers=ADMIN)
        assert resp.status == 422
        assert (await resp.json())["detail"][0]["msg"] == msg


async def test_auth_is_checked_before_the_body(start):
    client = await start()
    resp = await client.post("/key/generate", data=b"{not json",
                             headers={"content-type": "application/json"})
    assert resp.status == 401
    resp = await client.post("/key/generate", json={"max_budget": "x"},
                             headers=bearer("sk-never-issued-0000"))
    assert resp.status == 401


@pytest.mark.parametrize("path,raw,param,needle", [
    ("/key/generate", b'{"guardrails": ["nope"]}', "guardrails", "nope"),
    ("/key/update", b'{"key": "sk-x"}', None, "Nothing to update"),
    ("/key/block", b'{"key": "not-a-key"}', "key", "Invalid key format."),
    ("/key/list?sort_by=owner", b"", "sort_by", "Invalid sort column. Must be one of: spend"),
])
async def test_refusals_after_validation_are_400s_naming_the_field(start, path, raw, param,
                                                                   needle):
    client = await start()
    method = "GET" if "list" in path else "POST"
    resp = await client.request(method, path, data=raw or None,
                                headers={**ADMIN, "content-type": "application/json"})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert_openai_error(body, 400)
    assert body["error"]["param"] == param
    assert needle in body["error"]["message"]


@pytest.mark.parametrize("path,params,kind,loc", [
    ("/key/list", {"page": "0"}, "greater_than_equal", "page"),
    ("/key/list", {"size": "1000"}, "less_than_equal", "size"),
    ("/key/list", {"page": "x"}, "int_parsing", "page"),
    ("/key/list", {"include_team_keys": "maybe"}, "bool_parsing", "include_team_keys"),
    ("/key/list", {"sort_order": "sideways"}, "literal_error", "sort_order"),
    ("/user/list", {"page_size": "500"}, "less_than_equal", "page_size"),
    ("/user/list", {"role": "superuser"}, "literal_error", "role"),
    ("/organization/info", {}, "missing", "organization_id"),
    ("/organization/info", {"organization_id": ""}, "missing", "organization_id"),
    ("/budget/settings", {}, "missing", "budget_id")])
async def test_bad_query_parameters_are_a_422(start, path, params, kind, loc):
    """Admin GET routes read their query strings through models, as LiteLLM's do."""
    client = await start()
    resp = await client.get(path, params=params, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    [problem] = (await resp.json())["detail"]
    assert (problem["type"], problem["loc"]) == (kind, ["query", loc])
    if kind == "missing":
        assert problem["input"] is None


async def test_a_key_limited_to_some_models_lists_only_those(start, fake_upstream):
    client = await start({"model_list": [
        fake_upstream.model_entry("gpt-4o"), {"model_name": "mock-echo",
                                              "params": {"model": "mock/echo"}}]})
    limited = await generate(client, models=["mock-echo"])
    listed = await (await client.get("/v1/models", headers=bearer(limited["key"]))).json()
    assert [m["id"] for m in listed["data"]] == ["mock-echo"]
    listed = await (await client.get("/v1/models", headers=ADMIN)).json()
    assert sorted(m["id"] for m in listed["data"]) == ["gpt-4o", "mock-echo"]
