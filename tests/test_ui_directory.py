"""The directory pages of the admin UI (teams, organizations, internal users, customers,
budgets), driven in a browser as a person would: what is made, capped or blocked there binds the
gateway's next call, API refusals show next to the field they name, and a viewer sees no buttons
that change things (and the API refuses them anyway)."""

import pytest
from admin_kit import PRICED, admin_get, admin_post, bearer, until
from playwright.async_api import expect
from ui_kit import PHONE, rows_are

from gatehouse.app import GATEWAY


@pytest.fixture
def priced(fake_upstream):
    """A gateway config whose one model costs money, so calls spend."""
    return {"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]}


async def _fill(dialog, values: dict):
    for label, value in values.items():
        await dialog.get_by_label(label, exact=True).fill(value)


async def _create(page, noun: str, values: dict, selects: dict | None = None):
    await page.get_by_role("button", name=f"New {noun}").click()
    dialog = page.get_by_role("dialog", name=f"New {noun}")
    await _fill(dialog, values)
    for label, option in (selects or {}).items():
        await dialog.get_by_label(label, exact=True).select_option(option)
    await dialog.get_by_role("button", name="Create").click()
    return dialog


async def _open_row(page, text: str):
    """Open the detail view of the listed row showing ``text``."""
    await page.locator("#directory tbody tr", has_text=text).click()
    return page.get_by_role("dialog", name=text)


async def _confirm(page, action: str):
    await page.get_by_role("dialog", name=action).get_by_role("button", name=action).click()


async def _status_of(client, key, **extra):
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}
    resp = await client.post("/v1/chat/completions", json=chat, headers=bearer(key))
    return resp.status, await resp.json()


async def test_a_team_made_in_the_ui_takes_members_and_its_capped_budget_binds_its_keys(
        ui, priced):
    gateway = await ui(priced)
    client = gateway.client
    page = await gateway.login()
    await gateway.open(page, "teams")
    dialog = await _create(page, "team", {"Name": "research", "Team id": "t-research",
                                          "Max budget (USD)": "100", "Models": "gpt-4o"})
    await dialog.wait_for(state="hidden")
    row = page.locator("#directory tbody tr", has_text="research")
    await expect(row).to_contain_text("$0.00 / $100.00")
    await expect(page.locator("main > .notice")).to_have_text("Team research created.")

    detail = await _open_row(page, "research")
    await detail.get_by_role("button", name="Add member").click()
    member = page.get_by_role("dialog", name="Add member")
    await _fill(member, {"User id": "ann"})
    await member.get_by_label("Role").select_option("admin")
    await member.get_by_role("button", name="Add").click()
    await expect(detail.locator("tr", has_text="ann")).to_contain_text("admin")
    info = await admin_get(client, "/team/info", team_id="t-research")
    assert {"user_id": "ann", "user_email": None, "role": "admin"} in \
        info["team_info"]["members_with_roles"]
    await gateway.shot(page, "team-detail")

    # A call spends; the budget is then capped below what was spent, in the UI.
    key = (await admin_post(client, "/key/generate", {"team_id": "t-research"}))["key"]
    assert (await _status_of(client, key))[0] == 200
    await client.app[GATEWAY].call_log.drain()
    await detail.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("dialog", name="Edit team")
    assert await edit.get_by_label("Max budget (USD)").input_value() == "100"
    assert await edit.get_by_label("Team id").is_disabled()
    await _fill(edit, {"Max budget (USD)": "0.000001"})
    await edit.get_by_role("button", name="Save").click()
    await edit.wait_for(state="hidden")
    await expect(detail.locator("dl")).to_contain_text("/ $0.00000100")
    assert (await admin_get(client, "/team/info", team_id="t-research")
            )["team_info"]["max_budget"] == 0.000001

    async def refused():
        status, body = await _status_of(client, key)
        return status == 400 and body["error"]["type"] == "budget_exceeded"
    await until(refused)


async def test_a_team_blocked_in_the_ui_refuses_its_keys_until_unblocked(ui, priced):
    gateway = await ui(priced)
    client = gateway.client
    await admin_post(client, "/team/new", {"team_id": "t-ops", "team_alias": "ops"})
    key = (await admin_post(client, "/key/generate", {"team_id": "t-ops"}))["key"]
    page = await gateway.login()
    await gateway.open(page, "teams")
    detail = await _open_row(page, "ops")
    # exact: a name is otherwise found inside a longer one, "Block" inside "Unblock".
    await detail.get_by_role("button", name="Block", exact=True).click()
    await _confirm(page, "Block")
    await detail.get_by_role("button", name="Unblock").wait_for()
    await expect(detail.locator("dl")).to_contain_text("blocked")
    await expect(page.locator("#directory tbody tr", has_text="ops")).to_contain_text("blocked")

    async def refused():
        return (await _status_of(client, key))[0] in (401, 403)
    await until(refused)
    await detail.get_by_role("button", name="Unblock").click()
    await detail.get_by_role("button", name="Block", exact=True).wait_for()
    await expect(detail.locator("dl")).to_contain_text("active")

    async def served():
        return (await _status_of(client, key))[0] == 200
    await until(served)


async def test_an_organization_with_a_member_and_a_user_with_a_role(ui):
    gateway = await ui()
    client = gateway.client
    page = await gateway.login()
    await gateway.open(page, "organizations")
    dialog = await _create(page, "organization", {"Name": "acme", "Organization id": "o-acme",
                                                  "Max budget (USD)": "50"})
    await dialog.wait_for(state="hidden")
    await expect(page.locator("#directory tbody tr", has_text="acme")).to_contain_text(
        "$0.00 / $50.00")
    detail = await _open_row(page, "acme")
    await detail.get_by_role("button", name="Add member").click()
    member = page.get_by_role("dialog", name="Add member")
    await _fill(member, {"User id": "olga"})
    await member.get_by_label("Role").select_option("org_admin")
    await member.get_by_role("button", name="Add").click()
    await detail.locator("tr", has_text="olga").wait_for()
    org = await admin_get(client, "/organization/info", organization_id="o-acme")
    assert [(m["user_id"], m["user_role"]) for m in org["members"]] == [("olga", "org_admin")]
    await detail.get_by_role("button", name="Close").click()
    await gateway.shot(page, "organizations")

    await gateway.open(page, "users")
    dialog = await _create(page, "user", {"User id": "uma", "Email": "uma@corp.io"},
                           {"Role": "proxy_admin_viewer"})
    await dialog.wait_for(state="hidden")
    row = page.locator("#directory tbody tr", has_text="uma@corp.io")
    await expect(row).to_contain_text("proxy_admin_viewer")
    assert (await admin_get(client, "/user/info", user_id="uma")
            )["user_info"]["user_role"] == "proxy_admin_viewer"
    # The list searches by email on the server.
    await admin_post(client, "/user/new", {"user_id": "zed", "user_email": "zed@else.io"})
    await gateway.open(page, "users")
    await page.get_by_label("Search by email").fill("corp.io")
    await page.get_by_role("button", name="Search").click()
    await rows_are(page.locator("#directory tbody tr"), "uma@corp.io")
    await gateway.shot(page, "users")


async def test_a_user_made_with_a_key_sees_the_key_once(ui, priced):
    gateway = await ui(priced)
    page = await gateway.login()
    await gateway.open(page, "users")
    await page.get_by_role("button", name="New user").click()
    dialog = page.get_by_role("dialog", name="New user")
    await _fill(dialog, {"User id": "kai"})
    await dialog.get_by_label("Create a key for the user (shown once)").check()
    await dialog.get_by_role("button", name="Create").click()
    shown = page.get_by_role("dialog", name="Save this key now")
    key = await shown.locator("code").inner_text()
    assert key.startswith("sk-")
    assert await shown.get_by_role("button", name="Copy").is_visible()
    assert (await _status_of(gateway.client, key))[0] == 200
    await shown.get_by_role("button", name="Done").click()
    detail = await _open_row(page, "kai")
    await detail.locator("dl").wait_for()
    assert key not in await page.content()


async def test_a_customer_made_and_blocked_in_the_ui_is_refused(ui, priced):
    gateway = await ui(priced)
    client = gateway.client
    key = (await admin_post(client, "/key/generate", {}))["key"]
    page = await gateway.login()
    await gateway.open(page, "customers")
    dialog = await _create(page, "customer", {"Customer id": "cust-1", "Name": "Acme Ltd",
                                              "Max budget (USD)": "5"})
    await dialog.wait_for(state="hidden")
    row = page.locator("#directory tbody tr", has_text="cust-1")
    await expect(row).to_contain_text("active")
    assert (await _status_of(client, key, user="cust-1"))[0] == 200

    detail = await _open_row(page, "Acme Ltd")
    await detail.get_by_role("button", name="Block", exact=True).click()
    await _confirm(page, "Block")
    await detail.get_by_role("button", name="Unblock").wait_for()
    await expect(row).to_contain_text("blocked")

    async def refused():
        return (await _status_of(client, key, user="cust-1"))[0] != 200
    await until(refused)
    await gateway.shot(page, "customer-detail")
    await detail.get_by_role("button", name="Close").click()
    await gateway.shot(page, "customers")


async def test_a_budget_made_in_the_ui_binds_the_customer_linked_to_it(ui, priced):
    gateway = await ui(priced)
    client = gateway.client
    key = (await admin_post(client, "/key/generate", {}))["key"]
    page = await gateway.login()
    await gateway.open(page, "budgets")
    dialog = await _create(page, "budget", {"Budget id": "spent", "Max budget (USD)": "0",
                                            "Resets every": "30d"})
    await dialog.wait_for(state="hidden")
    await expect(page.locator("#directory tbody tr", has_text="spent")).to_contain_text("30d")
    await gateway.shot(page, "budgets")

    await gateway.open(page, "customers")
    dialog = await _create(page, "customer", {"Customer id": "broke", "Budget id": "spent"})
    await dialog.wait_for(state="hidden")
    status, body = await _status_of(client, key, user="broke")
    assert (status, body["error"]["type"]) == (400, "budget_exceeded")

    # Raised on the budgets page, it lets the customer's calls through again.
    await gateway.open(page, "budgets")
    detail = await _open_row(page, "spent")
    await detail.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("dialog", name="Edit budget")
    await _fill(edit, {"Max budget (USD)": "10"})
    await edit.get_by_role("button", name="Save").click()
    await edit.wait_for(state="hidden")
    await expect(detail.locator("dl")).to_contain_text("$10.00")

    async def served():
        return (await _status_of(client, key, user="broke"))[0] == 200
    await until(served)

    await detail.get_by_role("button", name="Delete").click()
    await _confirm(page, "Delete")
    await detail.wait_for(state="hidden")
    await expect(page.locator("main > .notice")).to_have_text("Budget spent deleted.")
    assert await admin_get(client, "/budget/list") == []


async def _field_error(dialog, label: str) -> str:
    """The error shown next to the field: the one the field says describes it."""
    field = dialog.get_by_label(label, exact=True)
    await expect(field).to_have_attribute("aria-invalid", "true")
    described = await field.get_attribute("aria-describedby")
    return await dialog.locator(f"[id='{described}']").inner_text()


async def test_api_errors_show_next_to_the_field_they_name(ui):
    gateway = await ui()
    await admin_post(gateway.client, "/team/new", {"team_id": "taken"})
    page = await gateway.login()
    await gateway.open(page, "teams")
    dialog = await _create(page, "team", {"Team id": "taken"})
    assert "already exists" in await _field_error(dialog, "Team id")

    await _fill(dialog, {"Team id": "fresh", "Max budget (USD)": "-1"})
    await dialog.get_by_role("button", name="Create").click()
    assert "greater than or equal to 0" in await _field_error(dialog, "Max budget (USD)")
    assert await dialog.get_by_role("alert").count() == 1
    await gateway.shot(page, "team-form-error")

    await gateway.open(page, "budgets")
    dialog = await _create(page, "budget", {"Budget per model (JSON)": "{not json"})
    assert "Not valid JSON" in await _field_error(dialog, "Budget per model (JSON)")
    assert await admin_get(gateway.client, "/budget/list") == []
    assert [t["team_id"] for t in await admin_get(gateway.client, "/team/list")] == ["taken"]


async def test_a_viewer_sees_no_buttons_that_change_things_and_the_api_refuses_them(ui):
    gateway = await ui()
    client = gateway.client
    await admin_post(client, "/team/new", {"team_id": "t-1", "team_alias": "one"})
    await admin_post(client, "/budget/new", {"budget_id": "b-1", "max_budget": 1})
    page = await gateway.login_sso("vic", role="proxy_admin_viewer")
    call = ("([method, path, body]) => gh.api(method, path, {body})"
            ".then(() => [200, ''], (error) => [error.status, error.message])")
    for name, noun, route, body in (
            ("teams", "team", "/team/new", {"team_alias": "mine"}),
            ("budgets", "budget", "/budget/new", {"budget_id": "mine"}),
            ("customers", "customer", "/customer/new", {"user_id": "mine"}),
            ("users", "user", "/user/new", {"user_id": "mine"}),
            ("organizations", "organization", "/organization/new",
             {"organization_alias": "mine"})):
        await gateway.open(page, name)
        assert await page.locator("h1").inner_text()
        assert not await page.get_by_role("button", name=f"New {noun}").count()
        status, message = await page.evaluate(call, ["POST", route, body])
        assert status in (401, 403), (route, status)
        # A refusal (some routes answer it with a 401) is not a lost session: the page shows
        # the API's reason rather than sending the viewer to log in again.
        assert "session has ended" not in message, (route, message)
    await gateway.open(page, "teams")
    detail = await _open_row(page, "one")
    await detail.locator("dl").wait_for()
    assert await detail.get_by_role("button").all_inner_texts() == ["Close"]
    assert (await page.evaluate(call, ["POST", "/team/block", {"team_id": "t-1"}]))[0] == 403
    assert not (await admin_get(client, "/team/info", team_id="t-1"))["team_info"]["blocked"]
    await gateway.shot(page, "teams-viewer")


async def test_a_team_admin_sees_only_their_teams_and_manages_its_members(ui):
    gateway = await ui()
    client = gateway.client
    await admin_post(client, "/user/new", {"user_id": "tia", "user_role": "internal_user",
                                           "user_email": "tia@corp.io"})
    await admin_post(client, "/team/new", {"team_id": "t-tia", "team_alias": "tias team",
                                           "members_with_roles": [
                                               {"user_id": "tia", "role": "admin"}]})
    await admin_post(client, "/team/new", {"team_id": "t-other", "team_alias": "other team"})
    page = await gateway.login_sso("tia")
    await gateway.open(page, "teams")
    listed = await page.locator("#directory tbody").inner_text()
    assert "tias team" in listed and "other team" not in listed
    assert not await page.get_by_role("button", name="New team").count()
    detail = await _open_row(page, "tias team")
    await detail.get_by_role("button", name="Add member").click()
    member = page.get_by_role("dialog", name="Add member")
    await _fill(member, {"User id": "bob"})
    await member.get_by_role("button", name="Add").click()
    await detail.locator("tr", has_text="bob").wait_for()
    # Changing the team itself is for admins of the proxy or of its organization.
    assert not await detail.get_by_role("button", name="Edit").count()
    assert not await detail.get_by_role("button", name="Delete").count()
    await detail.locator("tr", has_text="bob").get_by_role("button", name="Change").click()
    change = page.get_by_role("dialog", name="Change member")
    assert await change.get_by_label("User id").is_disabled()
    await change.get_by_label("Role").select_option("admin")
    await change.get_by_role("button", name="Save").click()
    await change.wait_for(state="hidden")
    roles = {m["user_id"]: m["role"] for m in (await admin_get(
        client, "/team/info", team_id="t-tia"))["team_info"]["members_with_roles"]}
    assert (roles["tia"], roles["bob"]) == ("admin", "admin")
    await gateway.shot(page, "teams-team-admin")


@pytest.mark.parametrize("name", ["teams", "organizations", "users", "customers", "budgets"])
async def test_each_directory_page_fits_a_phone(ui, name):
    gateway = await ui()
    await admin_post(gateway.client, "/team/new", {"team_id": "t-phone", "team_alias": "phone"})
    page = await gateway.login(viewport=PHONE)
    await gateway.open(page, name)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await gateway.shot(page, f"{name}-phone")
