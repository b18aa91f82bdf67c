"""Logging in to the admin UI: SSO against a small OIDC provider served by the test (discovery,
authorize, token with PKCE, userinfo, JWKS, an RS256 id_token), and UI_USERNAME/UI_PASSWORD;
either leaves an HttpOnly session cookie the admin API accepts as it accepts a key."""

from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from admin_kit import ADMIN, MASTER, admin_get, both_databases
from oidc_kit import rsa_key

from gatehouse.config import ConfigError


async def begin(client):
    """The browser's trip to the provider and back: the callback's path and query."""
    resp = await client.get("/sso/key/generate", allow_redirects=False)
    assert resp.status == 302, await resp.text()
    async with aiohttp.ClientSession() as browser:
        async with browser.get(resp.headers["Location"], allow_redirects=False) as back:
            assert back.status == 302
            callback = urlsplit(back.headers["Location"])
    assert callback.path == "/sso/callback"
    return f"{callback.path}?{callback.query}"


async def sso_login(client):
    resp = await client.get(await begin(client), allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp


def csrf(client):
    return {"x-csrf-token": client.session.cookie_jar.filter_cookies(
        client.make_url("/"))["gatehouse_csrf"].value}


async def error_of(resp, status):
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]["message"]


@both_databases
async def test_a_first_sso_login_makes_a_viewer_whose_cookie_the_admin_api_accepts(
        start, sso_env):
    client = await start()
    resp = await sso_login(client)
    assert resp.headers["Location"] == "/ui/?userID=ada"
    cookies = resp.headers.getall("Set-Cookie")
    session = next(c for c in cookies if c.startswith("gatehouse_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    assert "Secure" not in session  # plain http here
    # The session is not a token in a URL.
    assert session.split(";")[0].split("=", 1)[1] not in resp.headers["Location"]

    user = (await admin_get(client, "/user/info", user_id="ada"))["user_info"]
    assert (user["user_email"], user["user_role"]) == ("ada@corp.io", "internal_user_viewer")
    # The cookie alone: ada reads her own user, and is refused what a viewer may not do.
    resp = await client.get("/user/info", params={"user_id": "ada"})
    assert resp.status == 200 and (await resp.json())["user_id"] == "ada"
    resp = await client.post("/user/new", json={"user_id": "eve"}, headers=csrf(client))
    assert "Your role=internal_user_viewer" in await error_of(resp, 401)
    # Nor may a session call a model: it has no key to count spend against.
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    assert "No api key passed in." in await error_of(resp, 401)


async def test_proxy_admin_id_is_an_admin_and_changes_need_the_csrf_token(
        start, sso_env, redis_url, redis_namespace):
    sso_env.setenv("PROXY_ADMIN_ID", "ada")
    # With Redis, a logout ends the session on every gateway.
    client = await start({"general_settings": {"redis_url": redis_url,
                                               "redis_namespace": redis_namespace}})
    await sso_login(client)
    resp = await client.post("/user/new", json={"user_id": "bob"})
    assert "x-csrf-token" in await error_of(resp, 403)
    resp = await client.post("/user/new", json={"user_id": "bob"},
                             headers={"x-csrf-token": "forged"})
    assert resp.status == 403
    resp = await client.post("/user/new", json={"user_id": "bob"}, headers=csrf(client))
    assert resp.status == 200, await resp.text()
    assert (await admin_get(client, "/user/info", user_id="ada"))["user_info"][
        "user_role"] == "proxy_admin"
    # After logout the old cookie is refused, even if the browser sends it again.
    old = client.session.cookie_jar.filter_cookies(client.make_url("/"))["gatehouse_session"]
    # A link to /logout (from any site) only asks; the POST logs out.
    resp = await client.get("/logout", allow_redirects=False)
    assert resp.status == 200 and "Log out?" in await resp.text()
    assert (await client.get("/user/list")).status == 200
    resp = await client.post("/logout", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    resp = await client.get("/user/list", cookies={"gatehouse_session": old.value})
    assert "expired or ended" in await error_of(resp, 401)


async def test_a_replayed_callback_or_code_and_a_foreign_state_are_refused(start, sso_env):
    client = await start()
    callback = await begin(client)
    assert (await client.get(callback, allow_redirects=False)).status == 303
    # The same callback again: its state was used.
    assert "Invalid or expired SSO state" in await error_of(await client.get(callback), 400)
    # The used code with a fresh login's state: the provider refuses it.
    fresh = parse_qs(urlsplit(await begin(client)).query)["state"][0]
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    resp = await client.get("/sso/callback", params={"code": old_code, "state": fresh})
    assert "refused the authorization code (invalid_grant)" in await error_of(resp, 401)
    # A state this browser was not given (someone else's login) is refused.
    callback = await begin(client)
    client.session.cookie_jar.clear()
    assert "Invalid or expired SSO state" in await error_of(await client.get(callback), 400)
    resp = await client.get("/sso/callback", params={"error": "access_denied"})
    assert "access_denied" in await error_of(resp, 401)


async def test_an_id_token_signed_by_another_key_is_refused(start, sso_env, provider):
    provider.signing_key = rsa_key()
    client = await start()
    resp = await client.get(await begin(client))
    assert "the id_token is not valid" in await error_of(resp, 401)
    assert (await client.get("/user/list", headers=ADMIN)).status == 200
    users = await admin_get(client, "/user/list")
    assert users["users"] == []


async def test_allowed_email_domains_and_admin_only_mode(start, sso_env, provider):
    sso_env.setenv("ALLOWED_EMAIL_DOMAINS", "corp.io, other.org")
    provider.user = {"preferred_username": "mal", "email": "mal@evil.io"}
    client = await start({"general_settings": {"ui_access_mode": "admin_only"}})
    resp = await client.get(await begin(client))
    assert await error_of(resp, 401) == (
        "The email domain=evil.io, is not an allowed email domain=['corp.io', 'other.org']. "
        "Contact your admin to change this.")
    provider.user = {"preferred_username": "cy", "email": "cy@corp.io", "role": "internal_user"}
    resp = await client.get(await begin(client))
    assert await error_of(resp, 401) == (
        "User not allowed to access proxy. User role=internal_user, proxy mode=admin_only")
    # The provider's role claim set the stored role; a viewer of admins may enter.
    provider.user = {"preferred_username": "vi", "email": "vi@corp.io",
                     "role": "proxy_admin_viewer"}
    await sso_login(client)
    assert (await client.get("/user/list")).status == 200


async def test_username_and_password_log_in_as_the_proxy_admin(start, monkeypatch):
    monkeypatch.setenv("UI_USERNAME", "root")
    monkeypatch.setenv("UI_PASSWORD", "a-long-ui-password")
    client = await start()
    page = await client.get("/login")
    assert page.status == 200 and 'name="password"' in await page.text()
    assert "Log in with SSO" not in await page.text()
    resp = await client.post("/login", data={"username": "root", "password": "wrong"})
    assert resp.status == 401 and "Invalid credentials" in await resp.text()
    assert "gatehouse_session" not in resp.cookies
    resp = await client.post("/login", data={"username": "root", "password": MASTER})
    assert resp.status == 401  # UI_PASSWORD replaces the master key
    resp = await client.post("/login", data={"username": "root",
                                             "password": "a-long-ui-password"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/?userID=default_user_id"
    resp = await client.post("/user/new", json={"user_id": "bo"}, headers=csrf(client))
    assert resp.status == 200, await resp.text()


async def test_ui_settings_and_the_login_page_without_sso(start, sso_env):
    sso_env.setenv("PROXY_BASE_URL", "https://gw.example")
    sso_env.setenv("PROXY_LOGOUT_URL", "https://idp.example/logout")
    client = await start()
    resp = await client.get("/sso/get/ui_settings")
    assert await resp.json() == {"PROXY_BASE_URL": "https://gw.example",
                                 "PROXY_LOGOUT_URL": "https://idp.example/logout",
                                 "DEFAULT_TEAM_DISABLED": False}
    resp = await client.get("/.well-known/litellm-ui-config")
    assert (await resp.json())["auto_redirect_to_sso"] is True
    # The redirect names PROXY_BASE_URL's callback, and cookies are Secure behind https.
    resp = await client.get("/sso/key/generate", allow_redirects=False)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://gw.example/sso/callback"]
    assert "Secure" in resp.headers["Set-Cookie"]
    page = await client.get("/fallback/login")
    assert "Log in with SSO" in await page.text()


@pytest.mark.parametrize("env, problem", [
    ({"GENERIC_CLIENT_ID": "x"}, "GENERIC_CLIENT_SECRET not set. Set it in .env file"),
    ({"GENERIC_CLIENT_ID": "x", "GENERIC_CLIENT_SECRET": "y"},
     "GENERIC_AUTHORIZATION_ENDPOINT not set"),
    ({"GOOGLE_CLIENT_ID": "x"}, "GOOGLE_CLIENT_SECRET not set"),
    ({"MICROSOFT_CLIENT_ID": "x", "MICROSOFT_CLIENT_SECRET": "y"}, "MICROSOFT_TENANT not set"),
])
async def test_sso_config_mistakes_stop_the_start(start, monkeypatch, env, problem):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=problem):
        await start()


async def test_a_ui_password_without_a_master_key_stops_the_start(gateway, monkeypatch):
    monkeypatch.setenv("UI_PASSWORD", "a-long-ui-password")
    with pytest.raises(ConfigError, match="UI_PASSWORD is set but general_settings.master_key"):
        await gateway({})


