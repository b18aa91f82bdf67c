"""The admin UI's shell: a browser without a session is sent to log in and comes back where it
was going; each role sees only its pages, and a page it may not open answers 403; the scripts
and styles come from the gateway alone."""

from admin_kit import ADMIN, MASTER, admin_post
from playwright.async_api import expect
from ui_kit import PHONE, rows_are


async def test_a_browser_without_a_session_logs_in_and_lands_on_the_page_it_asked_for(ui):
    gateway = await ui({"litellm_settings": {"store_audit_logs": True}})
    page = await gateway._page({"width": 1280, "height": 800})
    await page.goto(f"{gateway.base}/ui/audit?table_name=x")
    assert "/login?next=" in page.url
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill("wrong")
    await page.get_by_role("button", name="Log in").click()
    assert "Invalid credentials" in await page.locator(".error").inner_text()
    await page.get_by_label("Username").fill("admin")
    await page.get_by_label("Password").fill(MASTER)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(lambda url: url.endswith("/ui/audit?table_name=x"))
    assert await page.get_by_role("heading", level=1).inner_text() == "Audit log"


async def test_a_login_never_sends_the_browser_to_another_site(ui):
    gateway = await ui()
    for target in ("https://evil.example/ui/", "//evil.example/ui/", "/ui/\\\\evil.example"):
        resp = await gateway.client.post("/login", data={
            "username": "admin", "password": MASTER, "next": target},
            allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"].startswith("/ui/?userID="), target


async def test_pages_carry_a_script_policy_and_assets_come_from_the_gateway(ui):
    gateway = await ui()
    page = await gateway.login()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(f"{gateway.base}/ui/audit")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert all(url.startswith(gateway.base) for url in requested), requested
    for missing in ("../pages.py", ".hidden", "nope.js"):
        resp = await gateway.client.get(f"/ui/static/{missing}", headers=ADMIN)
        assert resp.status == 404, missing


async def test_a_viewer_sees_only_its_pages_and_is_refused_the_others(ui):
    gateway = await ui()
    page = await gateway.login_sso("vera", role="internal_user_viewer")
    response = await page.goto(f"{gateway.base}/ui/audit")
    assert response.status == 403
    assert "may not open this page" in await page.locator("main").inner_text()
    titles = await page.locator("nav.sidebar").get_by_role("link").all_inner_texts()
    assert "Keys" in titles and "Usage" in titles
    assert "Audit log" not in titles and "Settings" not in titles


async def test_the_menu_works_on_a_phone(ui):
    gateway = await ui()
    page = await gateway.login(viewport=PHONE)
    await gateway.open(page, "audit")
    assert not await page.locator("nav.sidebar").is_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await page.get_by_text("Menu").click()
    await page.locator("details.menu").get_by_role("link", name="Settings").click()
    await page.wait_for_url(f"{gateway.base}/ui/settings")


async def test_the_audit_log_shows_who_changed_what_with_before_and_after(ui):
    gateway = await ui({"litellm_settings": {"store_audit_logs": True}})
    await admin_post(gateway.client, "/team/new", {"team_id": "t-audit", "team_alias": "before"})
    await admin_post(gateway.client, "/team/update", {"team_id": "t-audit", "team_alias": "after"})
    page = await gateway.login()
    await gateway.open(page, "audit")
    rows = page.locator("#audit-table tbody tr")
    await page.get_by_label("Object id").fill("t-audit")
    await page.get_by_role("button", name="Filter").click()
    # Newest first. A count alone would pass on the list before, or on its "Loading…" row.
    await rows_are(rows, "updated", "created")
    await page.get_by_label("Action").select_option("updated")
    await page.get_by_role("button", name="Filter").click()
    await rows_are(rows, "updated")
    await rows.first.click()
    dialog = page.locator("#audit-row")
    await expect(dialog).to_be_visible()
    assert '"team_alias": "before"' in await dialog.locator("#audit-before").inner_text()
    assert '"team_alias": "after"' in await dialog.locator("#audit-after").inner_text()
    await gateway.shot(page, "audit")


async def test_settings_show_the_effective_config_with_every_secret_masked(ui, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", "sk-upstream-6d1f0b2c9e8a7d5f")
    secrets = ["sk-upstream-6d1f0b2c9e8a7d5f", "vendor-secret-5c3e1a9b7d", "hunter2-db-pass",
               "env-value-4f2a8c", "Bearer hdr-7e1c5a"]
    gateway = await ui({
        "model_list": [{"model_name": "gpt-4o-settings", "litellm_params": {
            "model": "openai/gpt-4o", "api_key": "os.environ/UPSTREAM_KEY",
            "api_base": "http://127.0.0.1:9/v1", "headers": {"X-Extra": "Bearer hdr-7e1c5a"}}}],
        "guardrails": [{"guardrail_name": "kw", "litellm_params": {
            "guardrail": "banned_keywords", "mode": "pre_call",
            "banned_keywords_list": ["zebra"], "api_key": "vendor-secret-5c3e1a9b7d"}}],
        "environment_variables": {"SOME_SETTING": "env-value-4f2a8c"},
        "general_settings": {"redis_url": "redis://:hunter2-db-pass@127.0.0.1:6399/0"},
    }, load=["banned_keywords"])
    page = await gateway.login()
    await gateway.open(page, "settings")
    text = await page.locator("main").inner_text()
    assert "gpt-4o-settings" in text and "zebra" in text
    # Masked as the admin API's guardrail lists mask credentials: the first four characters.
    assert "api_key: vend****" in text
    html = await page.content()
    for secret in secrets:
        assert secret not in html, secret
    await gateway.shot(page, "settings")


async def test_logging_out_reaches_the_identity_providers_logout_page(ui, sso_env, provider):
    sso_env.setenv("PROXY_LOGOUT_URL", f"{provider.base}/logout")
    gateway = await ui()
    page = await gateway.login()
    await gateway.open(page, "audit")
    async with page.expect_request(f"{provider.base}/logout"):
        await page.get_by_role("button", name="Log out").click()
    resp = await page.request.get(f"{gateway.base}/ui/audit", max_redirects=0)
    assert resp.status == 303 and "/login" in resp.headers["location"]


async def test_only_the_uis_own_routes_are_left_to_the_ui_to_guard(ui, fake_upstream):
    gateway = await ui({"general_settings": {"pass_through_endpoints": [
        {"path": "/ui/tools/upstream", "target": fake_upstream.url, "auth": True}]}})
    resp = await gateway.client.get("/ui/tools/upstream/models")
    assert resp.status == 401
    resp = await gateway.client.get("/ui/audit", allow_redirects=False)
    assert resp.status == 303


async def test_admin_only_mode_holds_for_a_user_re_roled_after_login(ui):
    gateway = await ui({"general_settings": {"ui_access_mode": "admin_only"}})
    page = await gateway.login_sso("ana", role="proxy_admin_viewer")
    await gateway.open(page, "audit")
    assert await page.get_by_role("heading", level=1).inner_text() == "Audit log"
    await admin_post(gateway.client, "/user/update",
                     {"user_id": "ana", "user_role": "internal_user"})
    response = await page.goto(f"{gateway.base}/ui/audit")
    assert response.status == 403
