"""Teams through the admin API: what a team sets binds every key in it from the next call, the
guardrail lock refuses requests that choose guardrails, and deleting a team revokes its keys."""

import uuid

import pytest
from admin_kit import ADMIN, admin_post, bearer, both_databases
from doubles import PLUGINS, guardrail

from gatehouse.config import ConfigError, config_from_dict

LOCK_ERROR = {"error": {"message": "Your team does not have permission to modify guardrails.",
                        "type": "auth_error", "param": "None", "code": "403"}}


@both_databases
async def test_team_lifecycle_new_info_update_delete(start, chat):
    client = await start()
    team = await admin_post(client, "/team/new", {
        "team_alias": "research", "max_budget": 2.0, "models": ["gpt-4o"],
        "members_with_roles": [{"role": "admin", "user_id": "u-lead"}]})
    team_id = team["team_id"]
    assert uuid.UUID(team_id)
    assert (team["team_alias"], team["max_budget"], team["models"], team["blocked"]) == (
        "research", 2.0, ["gpt-4o"], False)
    # The caller joins as an admin: with the master key, as LiteLLM's default_user_id.
    assert team["members_with_roles"] == [
        {"user_id": "u-lead", "user_email": None, "role": "admin"},
        {"user_id": "default_user_id", "user_email": None, "role": "admin"}]
    key = await admin_post(client, "/key/generate", {"team_id": team_id})

    resp = await client.get("/team/info", params={"team_id": team_id}, headers=ADMIN)
    info = await resp.json()
    assert info["team_id"] == team_id
    assert info["team_info"]["team_alias"] == "research"
    assert [k["token"] for k in info["keys"]] == [key["token"]]
    assert key["key"] not in await resp.text()

    updated = await admin_post(client, "/team/update", {"team_id": team_id,
                                                        "team_alias": "research-2"})
    assert updated["data"]["team_alias"] == "research-2"
    assert updated["data"]["max_budget"] == 2.0  # fields not sent are left alone

    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key["key"]))
    assert resp.status == 200
    deleted = await admin_post(client, "/team/delete", {"team_ids": [team_id]})
    assert deleted == {"deleted_teams": [team_id], "deleted_keys": [key["token"]]}
    # The team's keys go with it: a key left behind would spend outside the team's budget.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key["key"]))
    assert resp.status == 401
    resp = await client.get("/team/info", params={"team_id": team_id}, headers=ADMIN)
    assert resp.status == 404


@both_databases
async def test_team_settings_bind_its_keys_from_the_next_call(start, chat):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "team-bind"})
    key = bearer((await admin_post(client, "/key/generate", {"team_id": "team-bind"}))["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200

    await admin_post(client, "/team/update", {"team_id": "team-bind", "models": ["mock-echo"]})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.status == 401
    error = (await resp.json())["error"]
    assert error["type"] == "team_model_access_denied"
    assert error["message"].startswith("team not allowed to access model.")

    await admin_post(client, "/team/update", {"team_id": "team-bind", "blocked": True})
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"), headers=key)
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == (
        "Authentication Error, Team=team-bind is blocked. Update via `/team/unblock` if your "
        "admin.")


@pytest.mark.parametrize("request_extra", [
    {"guardrails": ["guard"]},
    {"metadata": {"guardrails": {"guard": False}}},
])
async def test_the_team_lock_refuses_requests_that_choose_guardrails(start, fake_upstream, chat,
                                                                    request_extra):
    client = await start({"guardrails": [guardrail("guard")]}, plugins=PLUGINS)
    await admin_post(client, "/team/new", {"team_id": "locked-team"})
    await admin_post(client, "/team/update", {
        "team_id": "locked-team", "metadata": {"guardrails": {"modify_guardrails": False}}})
    locked = bearer((await admin_post(client, "/key/generate",
                                      {"team_id": "locked-team"}))["key"])
    free = bearer((await admin_post(client, "/key/generate", {}))["key"])

    resp = await client.post("/v1/chat/completions", json=chat(**request_extra), headers=locked)
    assert resp.status == 403
    assert await resp.json() == LOCK_ERROR
    assert fake_upstream.received == []
    # Without a choice of guardrails the team's keys work; other keys may choose.
    assert (await client.post("/v1/chat/completions", json=chat(), headers=locked)).status == 200
    resp = await client.post("/v1/chat/completions", json=chat(**request_extra), headers=free)
    assert resp.status == 200


async def test_a_teams_guardrail_list_runs_for_its_keys(start, chat):
    client = await start({"guardrails": [guardrail("team-guard", block_word="classified")]},
                         plugins=PLUGINS)
    await admin_post(client, "/team/new", {"team_id": "guarded",
                                           "metadata": {"guardrails": ["team-guard"]}})
    key = bearer((await admin_post(client, "/key/generate", {"team_id": "guarded"}))["key"])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.headers["x-gatehouse-applied-guardrails"] == "team-guard"
    resp = await client.post("/v1/chat/completions", json=chat("classified"), headers=key)
    assert resp.status == 400


async def test_a_team_budget_binds_its_keys(start, fake_upstream, chat):
    from gatehouse.app import GATEWAY
    client = await start({"model_list": [fake_upstream.model_entry(
        "gpt-4o", input_cost_per_token=0.01)]})
    await admin_post(client, "/team/new", {"team_id": "frugal", "max_budget": 0.01})
    first, second = [bearer((await admin_post(client, "/key/generate",
                                              {"team_id": "frugal"}))["key"])
                     for _ in range(2)]
    assert (await client.post("/v1/chat/completions", json=chat(), headers=first)).status == 200
    await client.app[GATEWAY].call_log.drain()
    resp = await client.post("/v1/chat/completions", json=chat(), headers=second)
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "budget_exceeded"


@pytest.mark.parametrize("path,body,status,param,needle", [
    ("/team/new", {"team_id": "taken"}, 400, "team_id", "already exists"),
    ("/team/new", {"metadata": {"guardrails": "off"}}, 400, "metadata", "metadata.guardrails"),
    ("/team/new", {"metadata": {"guardrails": ["nope"]}}, 400, "metadata", "nope"),
    ("/team/new", {"metadata": {"guardrails": {"modify_guardrails": "no"}}}, 400, "metadata",
     "metadata.guardrails"),
    ("/team/update", {"team_id": "taken"}, 400, None, "Nothing to update"),
])
async def test_bad_team_requests(start, path, body, status, param, needle):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "taken"})
    resp = await client.post(path, json=body, headers=ADMIN)
    assert resp.status == status, await resp.text()
    error = (await resp.json())["error"]
    assert (error["param"], error["code"]) == (param, str(status))
    assert needle in error["message"]
    # A refused delete deleted nothing.
    resp = await client.get("/team/info", params={"team_id": "taken"}, headers=ADMIN)
    assert resp.status == 200


@pytest.mark.parametrize("path,body", [
    ("/team/update", {"team_id": "missing", "team_alias": "x"}),
    ("/team/delete", {"team_ids": ["taken", "missing"]}),
    ("/team/block", {"team_id": "missing"}),
])
async def test_unknown_teams_are_a_raw_404_and_nothing_changes(start, path, body):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "taken"})
    resp = await client.post(path, json=body, headers=ADMIN)
    assert resp.status == 404
    assert await resp.json() == {"detail": {
        "error": "Team not found, passed team_id=missing"}}
    resp = await client.get("/team/info", params={"team_id": "taken"}, headers=ADMIN)
    assert resp.status == 200


@pytest.mark.parametrize("path,body,loc,msg", [
    ("/team/new", {"team_id": ""}, ["body", "team_id"], "at least 1 character"),
    ("/team/new", {"members_with_roles": [{"role": "owner", "user_id": "u"}]},
     ["body", "members_with_roles", 0, "role"], "'admin' or 'user'"),
    ("/team/new", {"members_with_roles": [{"role": "user"}]},
     ["body", "members_with_roles", 0],
     "Value error, Either user id or user email must be provided"),
    ("/team/new", {"blocked": "yes"}, ["body", "blocked"], "valid boolean"),
    # Plain lists and booleans refuse null, as LiteLLM's do.
    ("/team/new", {"models": None}, ["body", "models"], "valid list"),
    ("/team/new", {"blocked": None}, ["body", "blocked"], "valid boolean"),
    ("/team/update", {"team_alias": "x"}, ["body", "team_id"], "Field required"),
    ("/team/delete", {"team_ids": []}, ["body", "team_ids"], "at least 1 item"),
])
async def test_invalid_team_bodies_are_422s(start, path, body, loc, msg):
    client = await start()
    resp = await client.post(path, json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    [problem] = (await resp.json())["detail"]
    assert problem["loc"] == loc
    assert msg in problem["msg"]


async def test_a_team_update_with_null_clears_the_field(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "named", "team_alias": "old name"})
    updated = await admin_post(client, "/team/update", {"team_id": "named", "team_alias": None})
    assert updated["data"]["team_alias"] is None
    made = await admin_post(client, "/team/new", {"team_alias": None, "max_budget": None})
    assert (made["team_alias"], made["max_budget"]) == (None, None)


async def test_team_info_needs_a_team_id(start):
    client = await start()
    resp = await client.get("/team/info", headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["message"] == (
        "{'message': 'Malformed request. No team id passed in.'}")


@both_databases
async def test_default_team_settings_give_a_new_team_its_budget(start):
    client = await start({"litellm_settings": {"default_team_settings": [
        {"team_id": "callbacks-only", "success_callback": ["langfuse"], "max_budget": 50.0}]}})
    made = await admin_post(client, "/team/new", {"team_id": "plain"})
    assert made["max_budget"] == 50.0
    # What /team/new names wins; null is "not given", as on every create.
    assert (await admin_post(client, "/team/new", {"max_budget": 5}))["max_budget"] == 5
    assert (await admin_post(client, "/team/new", {"max_budget": None}))["max_budget"] == 50.0
    resp = await client.get("/team/info", params={"team_id": "plain"}, headers=ADMIN)
    assert (await resp.json())["team_info"]["max_budget"] == 50.0


def test_a_bad_default_team_budget_stops_the_start():
    with pytest.raises(ConfigError, match="default_team_settings"):
        config_from_dict({"litellm_settings": {"default_team_settings": [
            {"max_budget": "plenty"}]}})
