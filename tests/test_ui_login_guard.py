"""Who may reach the admin UI's password login: failed logins lock a username and a client
address for the rest of a window (counted in Redis when the gateway has it, so every gateway
sees the lock), and DISABLE_ADMIN_UI=true takes the UI and its login away with a clear answer."""

import logging

import pytest
from admin_kit import MASTER, admin_get, both_backends

# Long enough that no test runs across the end of a window.
WINDOW = 365 * 24 * 3600
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SCRIPT = {"Accept": "application/json"}
PASSWORD = "a-long-ui-password"


@pytest.fixture
def ui_password(monkeypatch):
    monkeypatch.setenv("UI_USERNAME", "root")
    monkeypatch.setenv("UI_PASSWORD", PASSWORD)


async def start(gateway, database, **limits):
    return await gateway({"general_settings": {
        "master_key": MASTER, **database, "ui_login_failure_window": WINDOW, **limits}})


async def log_in(client, username="root", password=PASSWORD, headers=None):
    return await client.post("/login", data={"username": username, "password": password},
                             headers={**BROWSER, **(headers or {})}, allow_redirects=False)


@both_backends
async def test_failed_logins_lock_the_username_even_against_the_right_password(
        database, gateway, ui_password, caplog):
    caplog.set_level(logging.INFO)
    client = await start(gateway, database, ui_login_max_failures_per_username=3)
    for _ in range(3):
        resp = await log_in(client, password="guess")
        assert resp.status == 401 and "Invalid credentials" in await resp.text()
    resp = await log_in(client)
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= WINDOW
    page = await resp.text()
    assert "Too many failed login attempts. Try again in" in page and 'name="password"' in page
    assert "gatehouse_session" not in resp.cookies
    # A script is told the same in the OpenAI error shape.
    resp = await client.post("/login", data={"username": "root", "password": PASSWORD},
                             headers=SCRIPT)
    assert resp.status == 429 and 0 < int(resp.headers["Retry-After"]) <= WINDOW
    error = (await resp.json())["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "429"
    assert error["message"].startswith("Too many failed login attempts")
    # The lock is the username's: another one from the same address is still checked.
    resp = await log_in(client, username="someone", password="guess")
    assert resp.status == 401
    # The refusal is logged once, naming the username and address, never a password.
    locks = [r.getMessage() for r in caplog.records if "login locked" in r.getMessage()]
    assert len(locks) == 1 and "'root'" in locks[0] and "127.0.0.1" in locks[0]
    assert PASSWORD not in caplog.text and "guess" not in caplog.text


@both_backends
async def test_a_successful_login_forgets_the_usernames_failures(database, gateway, ui_password):
    client = await start(gateway, database, ui_login_max_failures_per_username=3)
    for _ in range(2):
        assert (await log_in(client, password="guess")).status == 401
    resp = await log_in(client)
    assert resp.status == 303 and "gatehouse_session" in resp.cookies
    # Two more failures: four in the window, but only two since the login.
    for _ in range(2):
        assert (await log_in(client, password="guess")).status == 401
    assert (await log_in(client)).status == 303


@both_backends
async def test_failures_from_one_client_address_lock_it_for_every_username(
        database, gateway, ui_password):
    # The address is the one the trusted proxy forwards, as for allowed_ips.
    client = await start(gateway, database, ui_login_max_failures_per_ip=3,
                         trusted_proxy_header="X-Forwarded-For",
                         trusted_proxies=["127.0.0.1"])
    guesser = {"X-Forwarded-For": "203.0.113.9"}
    for name in ("root", "admin", "ops"):
        assert (await log_in(client, name, "guess", headers=guesser)).status == 401
    resp = await log_in(client, headers=guesser)
    assert resp.status == 429 and "Retry-After" in resp.headers
    # Someone else behind the same proxy logs in.
    resp = await log_in(client, headers={"X-Forwarded-For": "203.0.113.10"})
    assert resp.status == 303


@both_backends
async def test_logins_do_not_count_against_their_address(database, gateway, ui_password):
    client = await start(gateway, database, ui_login_max_failures_per_ip=2)
    for _ in range(4):
        assert (await log_in(client)).status == 303
    assert (await log_in(client, password="guess")).status == 401
    assert (await log_in(client)).status == 303


async def test_a_gateway_sharing_redis_sees_the_lock_another_set(two_gateways):
    first, second = two_gateways
    # The defaults: five failures per username; the password is the master key.
    for _ in range(5):
        assert (await log_in(first, "admin", "guess")).status == 401
    resp = await log_in(second, "admin", MASTER)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) <= 900
    assert (await log_in(first, "admin", MASTER)).status == 429


async def test_disable_admin_ui_answers_that_the_ui_is_off(gateway, monkeypatch):
    monkeypatch.setenv("DISABLE_ADMIN_UI", "true")
    client = await gateway({"general_settings": {"master_key": MASTER}})
    for path in ("/ui", "/ui/", "/ui/keys", "/ui/static/gatehouse.js", "/login",
                 "/fallback/login", "/sso/key/generate"):
        resp = await client.get(path, headers=BROWSER, allow_redirects=False)
        assert resp.status == 404, path
        page = await resp.text()
        assert "Admin UI disabled" in page and "DISABLE_ADMIN_UI=true" in page, path
        assert 'name="password"' not in page
    # No session can be had, even with the right password.
    resp = await client.post("/login", data={"username": "admin", "password": MASTER},
                             allow_redirects=False)
    assert resp.status == 404 and "gatehouse_session" not in resp.cookies
    resp = await client.get("/ui/keys", headers=SCRIPT)
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert error["type"] == "not_found_error" and "DISABLE_ADMIN_UI=true" in error["message"]
    resp = await client.get("/.well-known/litellm-ui-config")
    assert (await resp.json())["admin_ui_disabled"] is True
    # The management API is unchanged.
    assert "keys" in await admin_get(client, "/key/list")
    resp = await client.get("/key/list", headers=SCRIPT)
    assert resp.status == 401


async def test_the_locked_login_form_says_so_in_the_browser(ui):
    from playwright.async_api import expect

    app = await ui({"general_settings": {"ui_login_max_failures_per_username": 2}})
    page = await app._page({"width": 1280, "height": 800})
    await page.goto(f"{app.base}/login")
    for password in ("guess", "guess", MASTER):
        await page.get_by_label("Username").fill("admin")
        await page.get_by_label("Password").fill(password)
        async with page.expect_navigation():
            await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed login attempts. Try again in")
    assert "/ui/" not in page.url
