"""JWT auth: tokens signed by an identity provider whose JWKS a real HTTP server in the test
serves, beside the master key and virtual keys."""

import time
import uuid

import jwt
import pytest
from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer, both_databases
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
    ({"enforce_scope_based_access": True,
      "scope_mappings": [{"scope": "a", "models": ["gpt-4o"]}]}, [],
     "litellm_jwtauth.enforce_scope_based_access: not supported"),
    ({"end_user_id_jwt_field": "customer_id"}, [], "end_user_id_jwt_field: not supported"),
    ({}, [{"role": "team", "models": ["gpt-4o"]}], "role_permissions: per-role models"),
    ({"user_roles_jwt_field": "roles"}, [], "must be set together"),
])
async def test_jwt_settings_gatehouse_cannot_honour_stop_the_start(
        start, provider, jwtauth, role_permissions, needle):
    config = jwt_config(**jwtauth)
    config["general_settings"]["role_permissions"] = role_permissions
    with pytest.raises(ConfigError) as err:
        await start(config)
    assert needle in str(err.value)


async def test_a_role_mapped_to_team_still_needs_a_team_id(start, provider, chat):
    client = await start(jwt_config(roles_jwt_field="roles", role_mappings=[
        {"role": "app", "internal_role": "team"}]))
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=bearer(provider.token(roles=["app"]))), 401)
    assert "No team id passed in." in error["message"]
