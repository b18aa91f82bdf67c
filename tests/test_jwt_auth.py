"""JWT auth: tokens signed by an identity provider whose JWKS a real HTTP server in the test
serves, beside the master key and virtual keys."""

import logging
import time
import uuid

import jwt
import pytest
from admin_kit import ADMIN, MASTER, PRICED, admin_get, admin_post, bearer, both_databases
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from gatehouse.access.jwt_auth import Jwks
from gatehouse.app import GATEWAY
from gatehouse.config import ConfigError

AUDIENCE = "gatehouse-tests"


class Provider:
    """An identity provider: signing keys, and the JWKS it publishes over HTTP."""

    def __init__(self):
        self.keys = {}
        self.published = []
        self.fetches = 0

    def add(self, kid, private, algorithm, publish=True):
        self.keys[kid] = (private, algorithm)
        if publish:
            self.publish(kid)

    def publish(self, kid):
        private, algorithm = self.keys[kid]
        jwk = jwt.get_algorithm_by_name(algorithm).to_jwk(private.public_key(), as_dict=True)
        self.published.append({**jwk, "kid": kid, "alg": algorithm})

    def token(self, kid="rsa", **claims):
        private, algorithm = self.keys[kid]
        claims = {"aud": AUDIENCE, "exp": int(time.time()) + 300, **claims}
        return jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})

    async def jwks(self, request):
        self.fetches += 1
        return web.json_response({"keys": self.published})


@pytest.fixture
async def provider(aiohttp_server, monkeypatch):
    idp = Provider()
    idp.add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    app = web.Application()
    app.router.add_get("/jwks", idp.jwks)
    server = await aiohttp_server(app)
    monkeypatch.setenv("JWT_PUBLIC_KEY_URL", str(server.make_url("/jwks")))
    monkeypatch.setenv("JWT_AUDIENCE", AUDIENCE)
    return idp


JWT_SETTINGS = {"team_id_jwt_field": "client_id", "user_id_jwt_field": "sub",
                "org_id_jwt_field": "org_id"}


def jwt_config(fake_upstream=None, **jwtauth):
    config = {"general_settings": {"enable_jwt_auth": True,
                                   "litellm_jwtauth": {**JWT_SETTINGS, **jwtauth}}}
    if fake_upstream is not None:
        config["model_list"] = [fake_upstream.model_entry("gpt-4o", **PRICED)]
    return config


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


@both_databases
async def test_a_team_token_calls_models_and_its_spend_lands_on_team_user_and_org(
        start, provider, fake_upstream, chat):
    client = await start(jwt_config(fake_upstream, user_id_upsert=True))
    org = await admin_post(client, "/organization/new", {"organization_alias": "acme"})
    team = await admin_post(client, "/team/new", {"team_alias": "growth"})
    token = provider.token(client_id=team["team_id"], sub="alice",
                           org_id=org["organization_id"])

    resp = await client.post("/v1/chat/completions", headers=bearer(token), json=chat())
    assert resp.status == 200, await resp.text()
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()

    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert (log["team_id"], log["user"]) == (team["team_id"], "alice")
    info = await admin_get(client, "/team/info", team_id=team["team_id"])
    assert info["team_info"]["spend"] == pytest.approx(log["spend"])
    # user_id_upsert made the user the token names.
    user = await admin_get(client, "/user/info", user_id="alice")
    assert user["user_info"]["user_id"] == "alice"
    assert user["user_info"]["spend"] == pytest.approx(log["spend"])


async def test_virtual_keys_and_the_master_key_keep_working_beside_jwts(
        start, provider, chat):
    client = await start(jwt_config())
    key = await admin_post(client, "/key/generate", {})
    for headers in (ADMIN, bearer(key["key"])):
        resp = await client.post("/v1/chat/completions", headers=headers, json=chat())
        assert resp.status == 200, await resp.text()


async def test_an_expired_token_is_refused(start, provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    token = provider.token(client_id=team["team_id"], exp=int(time.time()) - 5)
    error = await error_of(await client.post("/v1/chat/completions", headers=bearer(token),
                                             json=chat()), 401)
    assert (error["message"], error["type"]) == ("Authentication Error, Token Expired",
                                                 "expired_key")


async def test_a_token_for_another_audience_or_with_a_bad_signature_is_refused(
        start, provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    wrong_audience = provider.token(client_id=team["team_id"], aud="someone-else")
    error = await error_of(await client.post("/v1/chat/completions",
                                             headers=bearer(wrong_audience), json=chat()), 401)
    assert error["message"].startswith("Authentication Error, Validation fails: ")
    assert error["type"] == "auth_error"
    good = provider.token(client_id=team["team_id"])
    head, body, _ = good.split(".")
    forged = f"{head}.{body}.{provider.token(client_id='other').split('.')[2]}"
    error = await error_of(await client.post("/v1/chat/completions", headers=bearer(forged),
                                             json=chat()), 401)
    assert "Validation fails" in error["message"]


async def test_an_unknown_kid_is_refused_and_a_rotated_key_is_learnt(
        start, provider, chat, monkeypatch):
    monkeypatch.setattr(Jwks, "REFETCH_INTERVAL", 0.0)
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    provider.add("stranger", rsa.generate_private_key(public_exponent=65537, key_size=2048),
                 "RS256", publish=False)
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(provider.token("stranger",
                                                              client_id=team["team_id"])),
        json=chat()), 401)
    assert "No matching public key found." in error["message"]
    assert "kid=stranger" in error["message"]

    # The provider rotates to a new key: the gateway fetches the JWKS again and accepts it.
    provider.add("rotated", ec.generate_private_key(ec.SECP256R1()), "ES256")
    fetches = provider.fetches
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        provider.token("rotated", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()
    assert provider.fetches == fetches + 1
    # A known key is taken from the cache: no fetch per call.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        provider.token("rsa", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()
    assert provider.fetches == fetches + 1


async def test_eddsa_tokens_are_accepted(start, provider, chat):
    provider.add("ed", ed25519.Ed25519PrivateKey.generate(), "EdDSA")
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers=bearer(provider.token("ed", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()


async def test_the_admin_scope_makes_a_proxy_admin_limited_to_admin_routes(
        start, provider, chat):
    client = await start(jwt_config())
    token = bearer(provider.token(scope="openid litellm_proxy_admin"))
    resp = await client.post("/key/generate", headers=token, json={})
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/chat/completions", headers=token,
                                             json=chat()), 401)
    assert error["message"].startswith(
        "Authentication Error, Admin not allowed to access this route. "
        "Route=/v1/chat/completions, Allowed Routes=")


async def test_a_team_token_is_held_to_team_routes_and_an_existing_team(start, provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    token = bearer(provider.token(client_id=team["team_id"]))
    error = await error_of(await client.post("/key/generate", headers=token, json={}), 401)
    assert error["message"] == (
        "Authentication Error, Team not allowed to access this route. Route=/key/generate, "
        "Allowed Routes=['openai_routes', 'info_routes']")
    unknown = bearer(provider.token(client_id=f"nope-{uuid.uuid4().hex[:6]}"))
    error = await error_of(await client.post("/v1/chat/completions", headers=unknown,
                                             json=chat()), 401)
    assert "Team doesn't exist in db" in error["message"]
    error = await error_of(await client.post("/v1/chat/completions",
                                             headers=bearer(provider.token()), json=chat()), 401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked in "
                                "jwt token - 'client_id'")


async def test_team_id_upsert_creates_the_team_on_first_sight(start, provider, chat):
    client = await start(jwt_config(team_id_upsert=True))
    team_id = f"idp-{uuid.uuid4().hex[:6]}"
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers=bearer(provider.token(client_id=team_id)))
    assert resp.status == 200, await resp.text()
    info = await admin_get(client, "/team/info", team_id=team_id)
    assert info["team_id"] == team_id


async def test_enforce_rbac_refuses_tokens_without_a_role_and_routes_outside_the_role(
        start, provider, chat):
    config = jwt_config(enforce_rbac=True, roles_jwt_field="resource_access.app.roles",
                        role_mappings=[{"role": "consumer", "internal_role": "internal_user"}])
    config["general_settings"]["role_permissions"] = [
        {"role": "internal_user", "routes": ["/v1/chat/completions"]}]
    client = await start(config)
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(provider.token())), 403)
    assert error["message"] == ("Unmatched token passed in. enforce_rbac is set to True. Token "
                                "must belong to a proxy admin, team, or user.")
    consumer = bearer(provider.token(resource_access={"app": {"roles": ["consumer"]}}))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=consumer)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/embeddings", headers=consumer,
                                             json={"model": "gpt-4o", "input": "hi"}), 403)
    assert error["message"] == ("Role=internal_user not allowed to call route=/v1/embeddings. "
                                "Allowed routes=['/v1/chat/completions']")


async def test_jwt_config_mistakes_stop_the_start(start, provider, monkeypatch):
    with pytest.raises(ConfigError) as err:
        await start(jwt_config(team_id_field="client_id"))
    assert "Invalid arguments provided: team_id_field. Allowed arguments are: " \
           "admin_jwt_scope" in str(err.value)
    monkeypatch.delenv("JWT_PUBLIC_KEY_URL")
    with pytest.raises(ConfigError) as err:
        await start(jwt_config())
    assert "Missing JWT Public Key URL from environment." in str(err.value)


async def test_a_team_token_is_held_to_its_teams_models_and_budget(start, provider, chat):
    client = await start(jwt_config())
    narrow = await admin_post(client, "/team/new", {"models": ["mock-echo"]})
    error = await error_of(await client.post(
        "/v1/chat/completions", json=chat(),
        headers=bearer(provider.token(client_id=narrow["team_id"]))), 401)
    assert error["type"] == "team_model_access_denied"
    spent = await admin_post(client, "/team/new", {"max_budget": 0})
    error = await error_of(await client.post(
        "/v1/chat/completions", json=chat(),
        headers=bearer(provider.token(client_id=spent["team_id"]))), 400)
    assert "Budget has been exceeded" in error["message"]


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
        start, provider, jwtauth, role_permissions, needle):
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


async def test_a_role_mapped_to_team_still_needs_a_team_id(start, provider, chat):
    client = await start(jwt_config(roles_jwt_field="roles", role_mappings=[
        {"role": "app", "internal_role": "team"}]))
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(provider.token(roles=["app"]))), 401)
    assert "No team id passed in." in error["message"]


async def settle(client):
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()


async def listed(client, headers):
    resp = await client.get("/v1/models", headers=headers)
    assert resp.status == 200, await resp.text()
    return [entry["id"] for entry in (await resp.json())["data"]]


SCOPES = [{"scope": "llm.chat", "models": ["gpt-4o"]},
          {"scope": "llm.echo", "models": ["mock-echo"]}]


async def test_scopes_grant_models_and_a_model_no_scope_grants_is_refused(
        start, provider, chat):
    client = await start(jwt_config(enforce_scope_based_access=True, scope_mappings=SCOPES))
    team = await admin_post(client, "/team/new", {})

    def token(**claims):
        return bearer(provider.token(client_id=team["team_id"], **claims))

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
        start, provider, chat):
    client = await start(jwt_config(enforce_scope_based_access=True, scope_mappings=[
        {"scope": "llm.chat", "models": ["gpt-4o"], "routes": ["/v1/chat/completions"]},
        {"scope": "llm.embed", "models": ["gpt-4o"], "routes": ["/v1/embeddings"]}]))
    team = await admin_post(client, "/team/new", {})
    token = bearer(provider.token(client_id=team["team_id"], scope="llm.chat"))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=token)
    assert resp.status == 200, await resp.text()
    error = await error_of(await client.post("/v1/embeddings", headers=token,
                                             json={"model": "gpt-4o", "input": "hi"}), 403)
    assert error["message"] == ("route=/v1/embeddings not allowed. "
                                "Allowed_routes=['/v1/chat/completions']")


async def test_a_roles_models_bind_its_tokens_calls_and_listing(start, provider, chat):
    config = jwt_config()
    config["general_settings"]["role_permissions"] = [{"role": "team", "models": ["gpt-4o"]}]
    client = await start(config)
    team = await admin_post(client, "/team/new", {})
    token = bearer(provider.token(client_id=team["team_id"]))
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
    user_token = bearer(provider.token(sub="someone"))
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"),
                             headers=user_token)
    assert resp.status == 200, await resp.text()
    key = await admin_post(client, "/key/generate", {})
    assert sorted(await listed(client, bearer(key["key"]))) == ["gpt-4o", "mock-echo"]


@both_databases
async def test_the_end_user_claim_drives_the_end_users_budget_and_spend(
        start, provider, fake_upstream, chat):
    client = await start(jwt_config(fake_upstream, end_user_id_jwt_field="customer_id"))
    team = await admin_post(client, "/team/new", {})
    await admin_post(client, "/customer/new", {"user_id": "cust-jwt", "max_budget": 0.01})
    token = bearer(provider.token(client_id=team["team_id"], customer_id="cust-jwt"))

    # The body names someone else: the end user the identity provider vouched for stands.
    resp = await client.post("/v1/chat/completions", json=chat(user="someone-else"),
                             headers=token)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert log["end_user"] == "cust-jwt"
    assert log["spend"] > 0.01
    info = await admin_get(client, "/customer/info", end_user_id="cust-jwt")
    assert info["spend"] == pytest.approx(log["spend"])

    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=token), 400)
    assert error["type"] == "budget_exceeded"
    # A body naming a fresh end user does not escape it either.
    error = await error_of(await client.post("/v1/chat/completions", json=chat(user="fresh"),
                                             headers=token), 400)
    assert error["type"] == "budget_exceeded"

    # Without the claim the body's user is the end user, as for a key.
    plain = bearer(provider.token(client_id=team["team_id"]))
    resp = await client.post("/v1/chat/completions", json=chat(user="cust-free"),
                             headers=plain)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert log["end_user"] == "cust-free"


async def test_an_end_user_blocked_by_the_admin_is_refused_through_the_claim(
        start, provider, chat):
    client = await start(jwt_config(end_user_id_jwt_field="customer_id"))
    team = await admin_post(client, "/team/new", {})
    await admin_post(client, "/customer/block", {"user_ids": ["cust-blocked"]})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        provider.token(client_id=team["team_id"], customer_id="cust-blocked")))
    assert resp.status == 400, await resp.text()
    assert "User blocked from making LLM API Calls. User=cust-blocked" in await resp.text()


@pytest.mark.parametrize("claims, shown", [
    ({"customer_id": ["a", "b"]}, "claim 'customer_id' must be a string, not list"),
    ({"customer_id": True}, "claim 'customer_id' must be a string, not bool"),
    ({"client_id": {"id": "t"}}, "claim 'client_id' must be a string, not dict"),
])
async def test_an_id_claim_of_the_wrong_type_refuses_the_token(
        start, provider, chat, claims, shown):
    client = await start(jwt_config(end_user_id_jwt_field="customer_id", team_id_upsert=True))
    token = bearer(provider.token(**{"client_id": "team-x", **claims}))
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=token), 401)
    assert (error["message"], error["type"]) == (
        f"Authentication Error, Validation fails: {shown}", "auth_error")


async def test_the_object_id_is_the_teams_or_the_users_as_the_mapped_role_says(
        start, provider, chat):
    config = jwt_config(
        user_id_upsert=True, roles_jwt_field="roles", object_id_jwt_field="oid",
        role_mappings=[{"role": "app", "internal_role": "team"},
                       {"role": "person", "internal_role": "internal_user"}])
    config["general_settings"]["role_permissions"] = [
        {"role": "internal_user", "models": ["mock-echo"]}]
    client = await start(config)
    team = await admin_post(client, "/team/new", {})

    # An application: its oid is a team's id, though the token also carries a sub.
    app = bearer(provider.token(roles=["app"], oid=team["team_id"], sub="svc-1"))
    resp = await client.post("/v1/chat/completions", json=chat(), headers=app)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert log["team_id"] == team["team_id"]

    # A person: the oid is their user id, over the sub claim; their role's models bind.
    person = bearer(provider.token(roles=["person"], oid="oid-bob", sub="sub-bob"))
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
        "/v1/chat/completions", json=chat(), headers=bearer(provider.token(roles=["app"]))),
        401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked "
                                "in jwt token - 'oid'")


async def test_a_token_of_no_known_role_may_call_the_public_allowed_routes_only(
        start, provider, chat):
    client = await start(jwt_config(public_allowed_routes=["public_routes", "/v1/models"]))
    nobody = bearer(provider.token(email="x@example.com"))
    assert sorted(await listed(client, nobody)) == ["gpt-4o", "mock-echo"]
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=nobody), 401)
    assert error["message"] == ("Authentication Error, No team id passed in. Field checked in "
                                "jwt token - 'client_id'")


def private_config(fake_upstream, **jwtauth):
    """gpt-4o for all, and b-private: a deployment of team t-b alone."""
    config = jwt_config(fake_upstream, **jwtauth)
    config["model_list"].append({**fake_upstream.model_entry("b-private", **PRICED),
                                 "model_info": {"team_id": "t-b"}})
    return config


async def team_of_call(client, resp):
    """The team a successful call was made as, by its spend log."""
    assert resp.status == 200, await resp.text()
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    return log["team_id"]


async def listed_models(client, credential):
    resp = await client.get("/v1/models", headers=bearer(credential))
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["data"]]


async def test_a_teams_private_deployment_serves_its_own_tokens_and_keys_and_the_admin(
        start, provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream))
    keys, tokens = {}, {}
    for team in ("t-a", "t-b"):
        await admin_post(client, "/team/new", {"team_id": team})
        keys[team] = (await admin_post(client, "/key/generate", {"team_id": team}))["key"]
        tokens[team] = provider.token(client_id=team, sub=f"user-{team}")

    async def call(credential):
        return await client.post("/v1/chat/completions", headers=bearer(credential),
                                 json=chat(model="b-private"))

    # Team A's token is told what team A's key is told: no such model.
    refused_key = await error_of(await call(keys["t-a"]), 400)
    refused_token = await error_of(await call(tokens["t-a"]), 400)
    assert refused_token == refused_key
    assert "b-private" in refused_token["message"]
    assert "b-private" not in await listed_models(client, tokens["t-a"])
    resp = await client.get("/model/info", headers=bearer(tokens["t-a"]))
    assert "b-private" not in [d["model_name"] for d in (await resp.json())["data"]]
    assert not any(body["model"] == "b-private" for body in fake_upstream.received)

    # Team B's token and key, and the master key, reach it.
    assert await team_of_call(client, await call(tokens["t-b"])) == "t-b"
    assert await team_of_call(client, await call(keys["t-b"])) == "t-b"
    assert (await call(MASTER)).status == 200
    assert "b-private" in await listed_models(client, tokens["t-b"])
    assert "b-private" in await listed_models(client, MASTER)
    # The shared model stays open to both teams.
    resp = await client.post("/v1/chat/completions", headers=bearer(tokens["t-a"]),
                             json=chat())
    assert await team_of_call(client, resp) == "t-a"


async def test_a_token_naming_several_teams_calls_as_the_first_allowed_the_model(
        start, provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream, team_id_jwt_field=None,
                                        team_ids_jwt_field="groups"))
    # t-a may use every model, yet b-private is t-b's alone; t-c lists gpt-4o only.
    await admin_post(client, "/team/new", {"team_id": "t-a"})
    await admin_post(client, "/team/new", {"team_id": "t-b"})
    await admin_post(client, "/team/new", {"team_id": "t-c", "models": ["gpt-4o"]})

    async def team_calling(groups, model):
        return await team_of_call(client, await client.post(
            "/v1/chat/completions", headers=bearer(provider.token(groups=groups)),
            json=chat(model=model)))

    assert await team_calling(["t-a", "t-b"], "gpt-4o") == "t-a"
    assert await team_calling(["t-a", "t-b"], "b-private") == "t-b"
    # A team whose list leaves the model out is passed over, as is a team the gateway does
    # not know.
    assert await team_calling(["t-c", "t-b"], "b-private") == "t-b"
    assert await team_calling(["t-none", "t-c", "t-b"], "gpt-4o") == "t-c"
    # Listing models (no model asked for) is done as the first team known.
    assert "b-private" not in await listed_models(client, provider.token(groups=["t-a",
                                                                                 "t-b"]))
    assert "b-private" in await listed_models(client, provider.token(groups=["t-none",
                                                                             "t-b"]))
    # A call naming several models calls each as its own team.
    resp = await client.post("/v1/chat/completions",
                             headers=bearer(provider.token(groups=["t-c", "t-b"])),
                             json=chat(model="gpt-4o,b-private"))
    assert resp.status == 200, await resp.text()
    assert [reply["model"] for reply in await resp.json()] == ["gpt-4o", "b-private"]

    # No team of the token may use it: refused, naming the teams tried.
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(provider.token(groups=["t-c", "t-a"])),
        json=chat(model="b-private")), 400)
    assert "b-private" in error["message"]
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(provider.token(groups=["t-c", "t-none"])),
        json=chat(model="mock-echo")), 403)
    assert error["message"] == ("No team has access to the requested model: mock-echo. "
                                "Checked teams=['t-c', 't-none']. Check `/models` to see all "
                                "available models.")
    assert error["type"] == "auth_error"


async def test_an_allowed_email_domain_refuses_tokens_without_one_and_makes_no_user(
        start, provider, chat):
    client = await start(jwt_config(user_allowed_email_domain="my-co.com", user_id_upsert=True,
                                    user_email_jwt_field="email"))
    for claims, shown in (({"sub": "mallory"}, "None"),
                          ({"sub": "eve", "email": "eve@evil.io"}, "eve@evil.io"),
                          ({"sub": "tricky", "email": "tricky@my-co.com.evil.io"},
                           "tricky@my-co.com.evil.io")):
        resp = await client.post("/v1/chat/completions", headers=bearer(provider.token(**claims)),
                                 json=chat())
        error = await error_of(resp, 403)
        assert (error["message"], error["type"]) == (
            f"Authentication Error - User's email domain={shown}, not in allowed "
            f"domain=my-co.com", "auth_error")
    # The domain is compared as domains are: whatever the case.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        provider.token(sub="ann", email="Ann@My-Co.COM")))
    assert resp.status == 200, await resp.text()
    users = await admin_get(client, "/user/list")
    assert [u["user_id"] for u in users["users"]] == ["ann"]
    # A team's token names no user: the rule on users' emails is not for it.
    team = await admin_post(client, "/team/new", {})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        provider.token(client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()


async def test_without_jwt_audience_tokens_for_any_audience_pass_and_the_start_says_so(
        start, provider, chat, monkeypatch, caplog):
    monkeypatch.delenv("JWT_AUDIENCE")
    caplog.set_level(logging.WARNING, logger="gatehouse")
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    for audience in ("another-app", AUDIENCE):
        resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
            provider.token(client_id=team["team_id"], aud=audience)))
        assert resp.status == 200, await resp.text()
    warnings = [r.getMessage() for r in caplog.records if "JWT_AUDIENCE" in r.getMessage()]
    assert warnings == ["JWT_AUDIENCE is not set: tokens the identity provider issued for any "
                        "of its applications are accepted; set it to this gateway's audience "
                        "(client id) so only tokens meant for it pass"]


async def test_a_litellm_config_with_enforce_team_based_model_access_starts(
        start, provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream, enforce_team_based_model_access=True))
    await admin_post(client, "/team/new", {"team_id": "t-a", "models": ["gpt-4o"]})
    token = provider.token(client_id="t-a", sub="user-t-a")
    resp = await client.post("/v1/chat/completions", headers=bearer(token), json=chat())
    assert resp.status == 200, await resp.text()
    resp = await client.post("/v1/chat/completions", headers=bearer(token),
                             json=chat(model="b-private"))
    assert "team not allowed to access model" in (await error_of(resp, 401))["message"]
