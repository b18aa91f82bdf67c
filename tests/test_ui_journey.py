"""A platform team's day in the admin UI, end to end in a browser: log in with the password,
make a team with a budget and a key in it that carries a guardrail, hand the key (copied from
the page) to an app whose calls pass or are blocked, and find both calls in Logs (the blocked
one with its guardrail's verdict) and in Usage; a new SSO user lands as a viewer who may change
nothing; a proxy admin's viewer reads every page but gets no button that changes anything, and
the API refuses what the buttons would do; the key dialog works from the keyboard alone."""

import re

import pytest
from admin_kit import PRICED, admin_post, bearer, settle
from playwright.async_api import expect
from ui_kit import gone_from_page, rows_are

# Off by default: only the keys that name it run it.
GUARDRAIL = {"guardrail_name": "no-codenames", "litellm_params": {
    "guardrail": "banned_keywords", "mode": "pre_call", "default_on": False,
    "banned_keywords_list": ["Project Falcon"]}}
# Buttons that change something: a viewer sees none of them anywhere.
CHANGES = re.compile(r"^(Create|New|Edit|Save|Delete|Block|Unblock|Regenerate|Add|Remove)\b")
# gh.api as the page calls it, with the session cookie and its CSRF token: [status, message].
API = ("([method, path, body]) => gh.api(method, path, {body})"
       ".then(() => [200, ''], (error) => [error.status, error.message])")


async def journey_gateway(ui, fake_upstream, **config):
    return await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                     "guardrails": [GUARDRAIL], **config}, load=["banned_keywords"])


async def chat(gateway, key, content):
    """A call as the team's app makes it."""
    return await gateway.client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": content}]})


async def filter_logs(page, count, first, **fields):
    """Set the Logs filters (text fields by label; selects by option label) and wait until
    ``count`` rows show, the first holding ``first``, the pager counting them (the list before
    may have as many)."""
    for label, value in fields.items():
        field = page.locator("#logs-filters").get_by_label(label)
        if await field.evaluate("node => node.tagName") == "SELECT":
            await field.select_option(label=value)
        else:
            await field.fill(value)
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#logs-table tbody tr")
    await rows_are(rows, first, *[None] * (count - 1))
    await expect(page.locator("#logs-table .pager [aria-live]")).to_have_text(
        f"Page 1 of 1 · {count} in all")
    return rows


async def open_call(page, row):
    """Open a listed call; its guardrail records by guardrail name."""
    await row.click()
    await page.locator("#log-call").get_by_role("heading", name="Guardrails").wait_for()
    return page.locator("#log-call-guardrails tbody tr")


def stat(page, name):
    return page.locator("#usage-totals .stat", has_text=name).locator(".value")


def dollars(text):
    """The amounts a page shows, as numbers: "$0.0150 / $25.00" is [0.015, 25.0]."""
    return [float(amount) for amount in re.findall(r"\$([0-9][0-9,.]*)", text.replace(",", ""))]


async def changing_buttons(scope):
    return [text for text in await scope.get_by_role("button").all_inner_texts()
            if CHANGES.match(text.strip())]


async def test_a_team_key_with_a_guardrail_made_in_the_ui_shows_its_calls_in_logs_and_usage(
        ui, fake_upstream):
    gateway = await journey_gateway(ui, fake_upstream)
    page = await gateway.login()

    # A team with a budget.
    await gateway.open(page, "teams")
    await page.get_by_role("button", name="New team").click()
    dialog = page.get_by_role("dialog", name="New team")
    await dialog.get_by_label("Name", exact=True).fill("Platform")
    await dialog.get_by_label("Team id", exact=True).fill("t-platform")
    await dialog.get_by_label("Max budget (USD)", exact=True).fill("25")
    await dialog.get_by_role("button", name="Create").click()
    await dialog.wait_for(state="hidden")
    team_row = page.locator("#directory tbody tr", has_text="Platform")
    await expect(team_row).to_contain_text("$0.00 / $25.00")

    # A key in it, naming the guardrail; the secret copied from the page it is shown on once.
    await gateway.open(page, "keys")
    await page.get_by_role("button", name="Create key").click()
    form = page.locator("#key-form")
    await form.get_by_label("Key alias").fill("checkout-app")
    await form.get_by_label("Team").fill("t-platform")
    await form.get_by_label("Models").fill("gpt-4o")
    await form.get_by_label("Guardrails").fill("no-codenames")
    await form.get_by_role("button", name="Create key").click()
    secret = await gateway.copied_key(page)
    await gateway.shot(page, "journey-key-shown-once")
    await page.locator("#key-secret").get_by_role("button", name="I have saved it").click()
    key_row = page.locator("#key-table tbody tr", has_text="checkout-app")
    await expect(key_row).to_contain_text("t-platform")
    await gone_from_page(page, secret)
    await key_row.click()
    details = page.locator("#key-details")
    await expect(details).to_contain_text("no-codenames")
    await details.get_by_role("button", name="Close").click()
    await gateway.shot(page, "journey-keys")

    # The app calls with it: one call passes, one is stopped by the key's guardrail.
    passed = await chat(gateway, secret, "Summarise the Q3 roadmap")
    assert passed.status == 200, await passed.text()
    cost = float(passed.headers["x-litellm-response-cost"])
    assert cost > 0
    blocked = await chat(gateway, secret, "What is the status of Project Falcon?")
    assert blocked.status == 400
    error = (await blocked.json())["error"]
    assert error["type"] == "guardrail_violation"
    assert "Keyword banned" in error["message"]
    await settle(gateway.client)

    # Logs: both calls, the newest (blocked) first with its verdict in the list.
    await gateway.open(page, "logs")
    rows = await filter_logs(page, 2, "checkout-app", **{"Team id": "t-platform"})
    await expect(rows).to_have_count(2)
    assert (await page.locator("#logs-table").inner_text()).count("checkout-app") == 2
    newest = await rows.nth(0).inner_text()
    assert "failure" in newest and "no-codenames intervened" in newest
    assert "success" in await rows.nth(1).inner_text()
    await gateway.shot(page, "journey-logs")

    rows = await filter_logs(page, 1, "no-codenames intervened",
                             **{"Guardrail verdict": "Intervened"})
    guardrails = await open_call(page, rows.first)
    summary = await page.locator("#log-call-summary").inner_text()
    assert "failure" in summary and "400" in summary and "Keyword banned" in summary
    assert "checkout-app" in summary and "t-platform" in summary
    run = guardrails.filter(has=page.get_by_role("cell", name="no-codenames", exact=True))
    await expect(run).to_have_count(1)
    text = await run.inner_text()
    assert "pre_call" in text and "intervened" in text and " ms" in text
    await gateway.shot(page, "journey-logs-blocked-call")
    await page.locator("#log-call").get_by_role("button", name="Close").click()

    rows = await filter_logs(page, 1, "success", **{"Guardrail verdict": "Passed"})
    guardrails = await open_call(page, rows.first)
    assert "success" in await page.locator("#log-call-summary").inner_text()
    run = guardrails.filter(has=page.get_by_role("cell", name="no-codenames", exact=True))
    assert "passed" in await run.inner_text()
    await page.locator("#log-call").get_by_role("button", name="Close").click()

    # Usage: the totals count both calls (one failed), the spend is the passing call's, and
    # the key and its team are groups of their own.
    await gateway.open(page, "usage")
    await expect(stat(page, "Requests")).to_have_text("2")
    await expect(stat(page, "Failed")).to_have_text("1")
    assert dollars(await stat(page, "Spend").inner_text()) == [pytest.approx(cost, rel=1e-2)]
    table = page.locator("#usage-table tbody")
    await expect(table).to_contain_text("checkout-app")
    await page.get_by_label("Group by").select_option("team")
    await page.get_by_role("heading", name="Spend per day by team").wait_for()
    await expect(table.locator("tr").first).to_contain_text("Platform")
    await gateway.shot(page, "journey-usage")

    # The team's spend has moved towards its budget.
    await gateway.open(page, "teams")
    team_row = page.locator("#directory tbody tr", has_text="Platform")
    await expect(team_row).to_contain_text("/ $25.00")
    spent = await team_row.locator("td", has_text="/ $25.00").inner_text()
    assert dollars(spent) == [pytest.approx(cost, rel=1e-2), 25.0]


async def test_a_new_sso_user_lands_as_a_viewer_and_may_not_make_keys(ui, fake_upstream):
    gateway = await journey_gateway(ui, fake_upstream)
    # No user made first: the first login through the identity provider makes them.
    page = await gateway.login_sso("nora")
    assert await page.locator("body").get_attribute("data-role") == "internal_user_viewer"
    assert await page.locator(".who .role").inner_text() == "internal_user_viewer"
    await gateway.open(page, "keys")
    await expect(page.locator("#key-table")).to_contain_text("No keys match.")
    assert await page.get_by_role("button", name="Create key").count() == 0
    assert await changing_buttons(page) == []
    # LiteLLM answers a role without the route a 401 (management-api.md 1.4-1.5).
    status, message = await page.evaluate(API, ["POST", "/key/generate", {"key_alias": "mine"}])
    assert status == 401
    assert "Only proxy admin" in message
    # The admins' pages are neither listed nor open to them.
    titles = await page.locator("nav.sidebar").get_by_role("link").all_inner_texts()
    assert "Internal users" not in titles
    assert (await page.goto(f"{gateway.base}/ui/users")).status == 403
    await gateway.shot(page, "journey-sso-viewer-keys")


async def test_a_proxy_admin_viewer_reads_every_page_but_changes_nothing(ui, fake_upstream):
    gateway = await journey_gateway(ui, fake_upstream,
                                    litellm_settings={"store_audit_logs": True})
    client = gateway.client
    await admin_post(client, "/organization/new", {"organization_id": "o-acme",
                                                    "organization_alias": "Acme"})
    await admin_post(client, "/team/new", {"team_id": "t-search", "team_alias": "Search",
                                           "max_budget": 40})
    key = await admin_post(client, "/key/generate", {"key_alias": "search-bot",
                                                     "team_id": "t-search"})
    await admin_post(client, "/user/new", {"user_id": "sam", "user_email": "sam@corp.io"})
    await admin_post(client, "/budget/new", {"budget_id": "b-starter", "max_budget": 5})
    await admin_post(client, "/customer/new", {"user_id": "cust-9", "alias": "Globex"})
    assert (await chat(gateway, key["key"], "hello")).status == 200
    await settle(client)

    page = await gateway.login_sso("paula", role="proxy_admin_viewer")
    seen = {"keys": "search-bot", "teams": "Search", "organizations": "Acme", "users": "sam",
            "customers": "Globex", "budgets": "b-starter", "usage": "search-bot",
            "logs": "search-bot", "audit": "t-search"}
    for name, data in seen.items():
        await gateway.open(page, name)
        await expect(page.locator("main")).to_contain_text(data)
        assert await changing_buttons(page) == [], name
    # Settings are the proxy admin's alone.
    assert (await page.goto(f"{gateway.base}/ui/settings")).status == 403

    # Opened, a key, a team or a user offers nothing but Close.
    await gateway.open(page, "keys")
    await page.locator("#key-table tbody tr", has_text="search-bot").click()
    await expect(page.locator("#key-details")).to_contain_text("t-search")
    assert await page.locator("#key-details").get_by_role("button").all_inner_texts() == [
        "Close"]
    for name, row in (("teams", "Search"), ("users", "sam")):
        await gateway.open(page, name)
        await page.locator("#directory tbody tr", has_text=row).click()
        detail = page.get_by_role("dialog", name=row)
        await detail.locator("dl").wait_for()
        assert await detail.get_by_role("button").all_inner_texts() == ["Close"], name
    await gateway.shot(page, "journey-admin-viewer-users")

    # What the buttons would have done, the API refuses the session.
    for path, body in (("/key/generate", {"key_alias": "sneaky"}),
                       ("/key/update", {"key": key["token"], "max_budget": 1}),
                       ("/key/block", {"key": key["token"]}),
                       ("/team/new", {"team_alias": "sneaky"}),
                       ("/team/update", {"team_id": "t-search", "max_budget": 1}),
                       ("/user/new", {"user_id": "sneaky"}),
                       ("/user/update", {"user_id": "sam", "user_role": "proxy_admin"})):
        status, _ = await page.evaluate(API, ["POST", path, body])
        assert status == 403, path
    await gateway.open(page, "keys")
    row = await page.locator("#key-table tbody tr", has_text="search-bot").inner_text()
    assert "Active" in row and "$1.00" not in row
    assert await page.locator("#key-table tbody tr", has_text="sneaky").count() == 0


async def test_the_key_dialog_opens_fills_and_submits_from_the_keyboard(ui, fake_upstream):
    gateway = await journey_gateway(ui, fake_upstream)
    page = await gateway.login()
    await gateway.open(page, "keys")
    # Tab from the top of the page to the Create key button.
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "key-create":
            break
    else:
        raise AssertionError("Tab never reached the Create key button")
    await page.keyboard.press("Enter")
    form = page.locator("#key-form")
    await expect(form).to_be_visible()
    # The dialog takes the focus on its first field; Tab walks the rest in order.
    await expect(form.get_by_label("Key alias")).to_be_focused()
    await page.keyboard.type("keyboard-app")
    await page.keyboard.press("Tab")
    await expect(form.get_by_label("Models")).to_be_focused()
    await page.keyboard.type("gpt-4o")
    for _ in range(15):
        await page.keyboard.press("Tab")
        if await form.get_by_label("Guardrails").evaluate("node => node === document.activeElement"):
            break
    await expect(form.get_by_label("Guardrails")).to_be_focused()
    await page.keyboard.type("no-codenames")
    await page.keyboard.press("Enter")  # submits the form

    shown = page.locator("#key-secret")
    await expect(shown).to_be_visible()
    secret = await shown.locator("code").inner_text()
    # Escape closes the shown-once dialog, and the secret goes with it.
    await page.keyboard.press("Escape")
    await expect(shown).to_be_hidden()
    await gone_from_page(page, secret)
    row = page.locator("#key-table tbody tr", has_text="keyboard-app")
    await expect(row).to_contain_text("gpt-4o")
    # The key works, with its guardrail.
    assert (await chat(gateway, secret, "hello")).status == 200
    assert (await chat(gateway, secret, "Project Falcon")).status == 400
    # Its row opens from the keyboard too.
    await row.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#key-details")).to_contain_text("no-codenames")
    await gateway.shot(page, "journey-keyboard-key-details")
