"""JWT auth: tokens signed by an identity provider whose JWKS a real HTTP server in the test
serves, beside the master key and virtual keys -- verifying them (signature, audience,
expiry, key rotation) and the identity their claims name (team, user, organization, end
user, email domain)."""

import logging
import time
import uuid

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer, both_databases
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from gatehouse.access.jwt_auth import Jwks
from gatehouse.config import ConfigError
from jwt_kit import AUDIENCE, error_of, jwt_config, settle


@both_databases
async def test_a_team_token_calls_models_and_its_spend_lands_on_team_user_and_org(
        start, jwt_provider, fake_upstream, chat):
    client = await start(jwt_config(fake_upstream, user_id_upsert=True))
    org = await admin_post(client, "/organization/new", {"organization_alias": "acme"})
    team = await admin_post(client, "/team/new", {"team_alias": "growth"})
    token = jwt_provider.token(client_id=team["team_id"], sub="alice",
                               org_id=org["organization_id"])

    resp = await client.post("/v1/chat/completions", headers=bearer(token), json=chat())
    assert resp.status == 200, await resp.text()
    await settle(client)

    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert (log["team_id"], log["user"]) == (team["team_id"], "alice")
    info = await admin_get(client, "/team/info", team_id=team["team_id"])
    assert info["team_info"]["spend"] == pytest.approx(log["spend"])
    # user_id_upsert made the user the token names.
    user = await admin_get(client, "/user/info", user_id="alice")
    assert user["user_info"]["user_id"] == "alice"
    assert user["user_info"]["spend"] == pytest.approx(log["spend"])


async def test_virtual_keys_and_the_master_key_keep_working_beside_jwts(
        start, jwt_provider, chat):
    client = await start(jwt_config())
    key = await admin_post(client, "/key/generate", {})
    for headers in (ADMIN, bearer(key["key"])):
        resp = await client.post("/v1/chat/completions", headers=headers, json=chat())
        assert resp.status == 200, await resp.text()


async def test_an_expired_token_is_refused(start, jwt_provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    token = jwt_provider.token(client_id=team["team_id"], exp=int(time.time()) - 5)
    error = await error_of(await client.post("/v1/chat/completions", headers=bearer(token),
                                             json=chat()), 401)
    assert (error["message"], error["type"]) == ("Authentication Error, Token Expired",
                                                 "expired_key")


async def test_a_token_for_another_audience_or_with_a_bad_signature_is_refused(
        start, jwt_provider, chat):
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    wrong_audience = jwt_provider.token(client_id=team["team_id"], aud="someone-else")
    error = await error_of(await client.post("/v1/chat/completions",
                                             headers=bearer(wrong_audience), json=chat()), 401)
    assert error["message"].startswith("Authentication Error, Validation fails: ")
    assert error["type"] == "auth_error"
    good = jwt_provider.token(client_id=team["team_id"])
    head, body, _ = good.split(".")
    forged = f"{head}.{body}.{jwt_provider.token(client_id='other').split('.')[2]}"
    error = await error_of(await client.post("/v1/chat/completions", headers=bearer(forged),
                                             json=chat()), 401)
    assert "Validation fails" in error["message"]


async def test_an_unknown_kid_is_refused_and_a_rotated_key_is_learnt(
        start, jwt_provider, chat, monkeypatch):
    monkeypatch.setattr(Jwks, "REFETCH_INTERVAL", 0.0)
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    jwt_provider.add("stranger", rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     "RS256", publish=False)
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(jwt_provider.token("stranger",
                                                                  client_id=team["team_id"])),
        json=chat()), 401)
    assert "No matching public key found." in error["message"]
    assert "kid=stranger" in error["message"]

    # The provider rotates to a new key: the gateway fetches the JWKS again and accepts it.
    jwt_provider.add("rotated", ec.generate_private_key(ec.SECP256R1()), "ES256")
    fetches = jwt_provider.fetches
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        jwt_provider.token("rotated", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()
    assert jwt_provider.fetches == fetches + 1
    # A known key is taken from the cache: no fetch per call.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        jwt_provider.token("rsa", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()
    assert jwt_provider.fetches == fetches + 1


async def test_eddsa_tokens_are_accepted(start, jwt_provider, chat):
    jwt_provider.add("ed", ed25519.Ed25519PrivateKey.generate(), "EdDSA")
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers=bearer(jwt_provider.token("ed", client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()


async def test_without_jwt_audience_tokens_for_any_audience_pass_and_the_start_says_so(
        start, jwt_provider, chat, monkeypatch, caplog):
    monkeypatch.delenv("JWT_AUDIENCE")
    caplog.set_level(logging.WARNING, logger="gatehouse")
    client = await start(jwt_config())
    team = await admin_post(client, "/team/new", {})
    for audience in ("another-app", AUDIENCE):
        resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
            jwt_provider.token(client_id=team["team_id"], aud=audience)))
        assert resp.status == 200, await resp.text()
    warnings = [r.getMessage() for r in caplog.records if "JWT_AUDIENCE" in r.getMessage()]
    assert warnings == ["JWT_AUDIENCE is not set: tokens the identity provider issued for any "
                        "of its applications are accepted; set it to this gateway's audience "
                        "(client id) so only tokens meant for it pass"]


async def test_jwt_config_mistakes_stop_the_start(start, jwt_provider, monkeypatch):
    with pytest.raises(ConfigError) as err:
        await start(jwt_config(team_id_field="client_id"))
    assert "Invalid arguments provided: team_id_field. Allowed arguments are: " \
           "admin_jwt_scope" in str(err.value)
    monkeypatch.delenv("JWT_PUBLIC_KEY_URL")
    with pytest.raises(ConfigError) as err:
        await start(jwt_config())
    assert "Missing JWT Public Key URL from environment." in str(err.value)


async def test_team_id_upsert_creates_the_team_on_first_sight(start, jwt_provider, chat):
    client = await start(jwt_config(team_id_upsert=True))
    team_id = f"idp-{uuid.uuid4().hex[:6]}"
    resp = await client.post("/v1/chat/completions", json=chat(),
                             headers=bearer(jwt_provider.token(client_id=team_id)))
    assert resp.status == 200, await resp.text()
    info = await admin_get(client, "/team/info", team_id=team_id)
    assert info["team_id"] == team_id


@pytest.mark.parametrize("claims, shown", [
    ({"customer_id": ["a", "b"]}, "claim 'customer_id' must be a string, not list"),
    ({"customer_id": True}, "claim 'customer_id' must be a string, not bool"),
    ({"client_id": {"id": "t"}}, "claim 'client_id' must be a string, not dict"),
])
async def test_an_id_claim_of_the_wrong_type_refuses_the_token(
        start, jwt_provider, chat, claims, shown):
    client = await start(jwt_config(end_user_id_jwt_field="customer_id", team_id_upsert=True))
    token = bearer(jwt_provider.token(**{"client_id": "team-x", **claims}))
    error = await error_of(await client.post("/v1/chat/completions", json=chat(),
                                             headers=token), 401)
    assert (error["message"], error["type"]) == (
        f"Authentication Error, Validation fails: {shown}", "auth_error")


@both_databases
async def test_the_end_user_claim_drives_the_end_users_budget_and_spend(
        start, jwt_provider, fake_upstream, chat):
    client = await start(jwt_config(fake_upstream, end_user_id_jwt_field="customer_id"))
    team = await admin_post(client, "/team/new", {})
    await admin_post(client, "/customer/new", {"user_id": "cust-jwt", "max_budget": 0.01})
    token = bearer(jwt_provider.token(client_id=team["team_id"], customer_id="cust-jwt"))

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
    plain = bearer(jwt_provider.token(client_id=team["team_id"]))
    resp = await client.post("/v1/chat/completions", json=chat(user="cust-free"),
                             headers=plain)
    assert resp.status == 200, await resp.text()
    await settle(client)
    [log] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    assert log["end_user"] == "cust-free"


async def test_an_end_user_blocked_by_the_admin_is_refused_through_the_claim(
        start, jwt_provider, chat):
    client = await start(jwt_config(end_user_id_jwt_field="customer_id"))
    team = await admin_post(client, "/team/new", {})
    await admin_post(client, "/customer/block", {"user_ids": ["cust-blocked"]})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        jwt_provider.token(client_id=team["team_id"], customer_id="cust-blocked")))
    assert resp.status == 400, await resp.text()
    assert "User blocked from making LLM API Calls. User=cust-blocked" in await resp.text()


async def test_an_allowed_email_domain_refuses_tokens_without_one_and_makes_no_user(
        start, jwt_provider, chat):
    client = await start(jwt_config(user_allowed_email_domain="my-co.com", user_id_upsert=True,
                                    user_email_jwt_field="email"))
    for claims, shown in (({"sub": "mallory"}, "None"),
                          ({"sub": "eve", "email": "eve@evil.io"}, "eve@evil.io"),
                          ({"sub": "tricky", "email": "tricky@my-co.com.evil.io"},
                           "tricky@my-co.com.evil.io")):
        resp = await client.post("/v1/chat/completions", json=chat(),
                                 headers=bearer(jwt_provider.token(**claims)))
        error = await error_of(resp, 403)
        assert (error["message"], error["type"]) == (
            f"Authentication Error - User's email domain={shown}, not in allowed "
            f"domain=my-co.com", "auth_error")
    # The domain is compared as domains are: whatever the case.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        jwt_provider.token(sub="ann", email="Ann@My-Co.COM")))
    assert resp.status == 200, await resp.text()
    users = await admin_get(client, "/user/list")
    assert [u["user_id"] for u in users["users"]] == ["ann"]
    # A team's token names no user: the rule on users' emails is not for it.
    team = await admin_post(client, "/team/new", {})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(
        jwt_provider.token(client_id=team["team_id"])))
    assert resp.status == 200, await resp.text()
