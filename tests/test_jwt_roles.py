"""JWT auth: what a token may do by its roles and scopes -- the admin scope, team and user
routes, enforce_rbac, role_permissions' models and routes, scope_mappings, object ids mapped by
role, public routes -- and the settings for them that cannot work as written."""

import uuid

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer
from gatehouse.config import ConfigError
from jwt_kit import error_of, jwt_config, listed, settle


async def test_the_admin_scope_makes_a_proxy_admin_limited_to_admin_routes(
        start, jwt_provider, chat):
    client = await start(jwt_config())
    token = bearer(jwt_provider.token(scope="openid litellm_proxy_admin"))
    resp = await client.post("/key/generate", headers=token, json={})
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/chat/completions", headers=token,
                                             json=chat()), 401)
    assert error["message"].startswith(
        "Authentication Error, Admin not allowed to access this route. "
        "Route=/v1/chat/completions, Allowed Routes=")


async def test_a_team_token_is_held_to_team_routes_and_an_existing_team(start, jwt_provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    token = bearer(jwt_provider.token(client_id=team["team_id"]))
    error = await error_of(await client.post("/key/generate", headers=token, json={}), 401)
    assert error["message"] == (
        "Authentication Error, Team not allowed to access this route. Route=/key/generate, "
        "Allowed Routes=['openai_routes', 'info_routes']")
    unknown = bearer(jwt_provider.token(client_id=f"nope-{uuid.uuid4().hex[:6]}"))
    error = await error_of(await client.post("/v1/chat/completions", headers=unknown,
                                             json=chat()), 401)
    assert "Team doesn't exist in db" in error["message"]
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(jwt_provider.token())), 401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked in "
                                "jwt token - 'client_id'")


async def test_enforce_rbac_refuses_tokens_without_a_role_and_routes_outside_the_role(
        start, jwt_provider, chat):
    config = jwt_config(enforce_rbac=True, roles_jwt_field="resource_access.app.roles",
                        role_mappings=[{"role": "consumer", "internal_role": "internal_user"}])
    config["general_settings"]["role_permissions"] = [
        {"role": "internal_user", "routes": ["/v1/chat/completions"]}]
    client = await start(config)
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(jwt_provider.token())), 403)
    assert error["message"] == ("Unmatched token passed in. enforce_rbac is set to True. Token "
                                "must belong to a proxy admin, team, or user.")
    consumer = bearer(jwt_provider.token(resource_access={"app": {"roles": ["consumer"]}}))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=consumer)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/embeddings", headers=consumer,
                                             json={"model": "gpt-4o", "input": "hi"}), 403)
    assert error["message"] == ("Role=internal_user not allowed to call route=/v1/embeddings. "
                                "Allowed routes=['/v1/chat/completions']")


async def test_a_role_mapped_to_team_still_needs_a_team_id(start, jwt_provider, chat):
    client = await start(jwt_config(roles_jwt_field="roles", role_mappings=[
        {"role": "app", "internal_role": "team"}]))
    token = bearer(jwt_provider.token(roles=["app"]))
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=token), 401)
    assert "No team id passed in." in error["message"]


async def test_a_roles_models_bind_its_tokens_calls_and_listing(start, jwt_provider, chat):
    config = jwt_config()
    config["general_settings"]["role_permissions"] = [{"role": "team", "models": ["gpt-4o"]}]
    client = await start(config)
    team = await admin_post(client, "/team/new", {})
    token = bearer(jwt_provider.token(client_id=team["team_id"]))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=token)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/chat/completions", headers=token,
                                             json=chat(model="mock-echo")), 403)
    assert (error["message"], error["type"]) == (
        "Role=team not allowed to call model=mock-echo. Allowed models=['gpt-4o']",
        "auth_error")
    # Naming it beside an allowed one does not get it through.
    error = await error_of(await client.post("/v1/chat/completions", headers=token,
                                             json=chat(model="gpt-4o,mock-echo")), 403)
    assert "model=mock-echo" in error["message"]
    assert await listed(client, token) == ["gpt-4o"]
    resp = await client.get("/v1/models/mock-echo", headers=token)
    assert resp.status == 404
    info = await client.get("/model/info", headers=token)
    assert info.status == 200, await info.text()
    assert [d["model_name"] for d in (await info.json())["data"]] == ["gpt-4o"]
    # Another role is not narrowed, nor is a key.
    user_token = bearer(jwt_provider.token(sub="someone"))
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"),
                             headers=user_token)
    assert resp.status == 200, await resp.text()
    key = await admin_post(client, "/key/generate", {})
    assert sorted(await listed(client, bearer(key["key"]))) == ["gpt-4o", "mock-echo"]


async def test_the_object_id_is_the_teams_or_the_users_as_the_mapped_role_says(
        start, jwt_provider, chat):
    config = jwt_config(
        user_id_upsert=True, roles_jwt_field="roles", object_id_jwt_field="oid",
        role_mappings=[{"role": "app", "internal_role": "team"},
                       {"role": "person", "internal_role": "internal_user"}])
    config["general_settings"]["role_permissions"] = [
        {"role": "internal_user", "models": ["mock-echo"]}]
    client = await start(config)
    team = await admin_post(client, "/team/new", {})

    # An application: its oid is a team's id, though the token also carries a sub.
    app = bearer(jwt_provider.token(roles=["app"], oid=team["team_id"], sub="svc-1"))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=app)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert log["team_id"] == team["team_id"]

    # A person: the oid is their user id, over the sub claim; their role's models bind.
    person = bearer(jwt_provider.token(roles=["person"], oid="oid-bob", sub="sub-bob"))
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"),
                             headers=person)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert (log["user"], log["team_id"]) == ("oid-bob", None)
    assert (await admin_get(client, "/user/info", user_id="oid-bob"))["user_info"]["user_id"] \
        == "oid-bob"
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=person), 403)
    assert error["message"] == ("Role=internal_user not allowed to call model=gpt-4o. "
                                "Allowed models=['mock-echo']")

    # An application's token without its oid names no team.
    error = await error_of(await client.post(
        "/v1/chat/completions", json=chat(), headers=bearer(jwt_provider.token(roles=["app"]))),
        401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked "
                                "in jwt token - 'oid'")


async def test_a_token_of_no_known_role_may_call_the_public_allowed_routes_only(
        start, jwt_provider, chat):
    client = await start(jwt_config(public_allowed_routes=["public_routes", "/v1/models"]))
    nobody = bearer(jwt_provider.token(email="x@example.com"))
    assert sorted(await listed(client, nobody)) == ["gpt-4o", "mock-echo"]
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=nobody), 401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked in "
                                "jwt token - 'client_id'")


SCOPES = [{"scope": "llm.chat", "models": ["gpt-4o"]},
          {"scope": "llm.echo", "models": ["mock-echo"]}]


async def test_scopes_grant_models_and_a_model_no_scope_grants_is_refused(
        start, jwt_provider, chat):
    client = await start(jwt_config(enforce_scope_based_access=True, scope_mappings=SCOPES))
    team = await admin_post(client, "/team/new", {})

    def token(**claims):
        return bearer(jwt_provider.token(client_id=team["team_id"], **claims))

    chat_only = token(scope="openid llm.chat")
    resp = await client.post("/v1/chat/completions", json=chat(), headers=chat_only)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/chat/completions", headers=chat_only,
                                             json=chat(model="mock-echo")), 403)
    assert (error["message"], error["type"]) == (
        "model=mock-echo not allowed. Allowed_models=['gpt-4o']", "auth_error")
    assert await listed(client, chat_only) == ["gpt-4o"]
    # A list claim works as a space-separated one; each scope adds its models.
    both = token(scope=["llm.chat", "llm.echo"])
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"), headers=both)
    assert resp.status == 200, await resp.text()
    assert sorted(await listed(client, both)) == ["gpt-4o", "mock-echo"]
    # No scope claim, or one no mapping knows: no model at all.
    for bare in (token(), token(scope="openid profile")):
        error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                                 headers=bare), 403)
        assert error["message"] == "model=gpt-4o not allowed. Allowed_models=[]"
        assert await listed(client, bare) == []
    # Keys are not JWTs: no scope narrows them.
    key = await admin_post(client, "/key/generate", {})
    for headers in (ADMIN, bearer(key["key"])):
        resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"),
                                 headers=headers)
        assert resp.status == 200, await resp.text()


async def test_scope_mappings_with_routes_hold_a_token_to_its_scopes_routes(
        start, jwt_provider, chat):
    client = await start(jwt_config(enforce_scope_based_access=True, scope_mappings=[
        {"scope": "llm.chat", "models": ["gpt-4o"], "routes": ["/v1/chat/completions"]},
        {"scope": "llm.embed", "models": ["gpt-4o"], "routes": ["/v1/embeddings"]}]))
    team = await admin_post(client, "/team/new", {})
    token = bearer(jwt_provider.token(client_id=team["team_id"], scope="llm.chat"))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=token)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/embeddings", headers=token,
                                             json={"model": "gpt-4o", "input": "hi"}), 403)
    assert error["message"] == ("route=/v1/embeddings not allowed. "
                                "Allowed_routes=['/v1/chat/completions']")


@pytest.mark.parametrize("jwtauth, role_permissions, needle", [
    ({"scope_mappings": [{"scope": "a", "models": ["gpt-4o"]}]}, [],
     "litellm_jwtauth.scope_mappings: requires enforce_scope_based_access: true"),
    ({"enforce_scope_based_access": True}, [],
     "litellm_jwtauth.enforce_scope_based_access: requires scope_mappings"),
    ({"object_id_jwt_field": "oid"}, [], "litellm_jwtauth.object_id_jwt_field: requires "
                                         "role_mappings"),
    ({}, [{"role": "team", "model": ["gpt-4o"]}],
     "general_settings.role_permissions[0].model: Extra inputs are not permitted"),
    ({}, [{"role": "viewer", "models": ["gpt-4o"]}], "general_settings.role_permissions[0].role"),
    ({}, [{"role": "team", "models": ["a"]}, {"role": "team", "routes": ["/v1/models"]}],
     "role 'team' is listed more than once"),
    ({"user_roles_jwt_field": "roles"}, [], "must be set together"),
])
async def test_jwt_settings_that_cannot_be_honoured_as_written_stop_the_start(
        start, jwt_provider, jwtauth, role_permissions, needle):
    config = jwt_config(**jwtauth)
    config["general_settings"]["role_permissions"] = role_permissions
    with pytest.raises(ConfigError) as err:
        await start(config)
    assert needle in str(err.value)


async def test_role_permissions_without_jwt_auth_stop_the_start(start):
    # Roles are a JWT's: without JWTs the list would narrow nobody.
    with pytest.raises(ConfigError) as err:
        await start({"general_settings": {"role_permissions": [
            {"role": "internal_user", "models": ["gpt-4o"]}]}})
    assert "general_settings.role_permissions: applies to JWT callers only" in str(err.value)
