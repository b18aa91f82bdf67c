"""The Keys page: an admin issues a key in the browser and calls the gateway with the secret
the page showed once; edits, blocks, regenerates and deletes it there and sees each change in
the list and on the call path; finds keys by alias and pages through them; sees the API's
errors next to the field; a viewer gets no buttons that change keys (and the API refuses
them); an internal user sees and makes only their own keys."""

import pytest
from playwright.async_api import expect

from admin_kit import admin_get, admin_post, bearer
from ui_kit import NOTE_READS, PHONE, gone_from_page, hold_answer, rows_are

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


async def call(gateway, secret):
    resp = await gateway.client.post("/v1/chat/completions", json=CHAT, headers=bearer(secret))
    await resp.read()
    return resp.status


def row(page, alias):
    return page.locator("#key-table tbody tr", has_text=alias)


async def open_key(page, alias):
    await row(page, alias).click()
    details = page.locator("#key-details")
    await details.get_by_role("heading", name=alias).wait_for()
    return details


async def close_secret(page, secret):
    await page.locator("#key-secret").get_by_role("button", name="I have saved it").click()
    await page.locator("#key-secret").wait_for(state="hidden")
    # Gone from the page once the dialog closes: nothing left to read it from later.
    await gone_from_page(page, secret)


async def test_an_admin_creates_a_key_in_the_browser_and_calls_the_gateway_with_it(ui):
    gateway = await ui()
    page = await gateway.login()
    await gateway.open(page, "keys")
    await page.get_by_role("button", name="Create key").click()
    form = page.locator("#key-form")
    await form.get_by_label("Key alias").fill("billing-service")
    await form.get_by_label("Models").fill("gpt-4o")
    await form.get_by_label("Max budget (USD)").fill("5")
    await form.get_by_label("Requests per minute (RPM)").fill("60")
    await form.get_by_label("Expires after").fill("30d")
    await form.get_by_label("Metadata (JSON)").fill('{"owner": "billing"}')
    await form.get_by_role("button", name="Create key").click()
    secret = await gateway.copied_key(page)
    await gateway.shot(page, "keys-secret-shown-once")
    assert await call(gateway, secret) == 200

    await close_secret(page, secret)
    listed = row(page, "billing-service")
    for shown in ("$5.00", "gpt-4o", "60 rpm", "Active", secret[-4:]):
        await expect(listed).to_contain_text(shown)
    assert secret not in await listed.inner_text()  # the masked name only
    stored = await admin_get(gateway.client, "/key/info", key=secret)
    assert stored["info"]["metadata"] == {"owner": "billing"}
    assert stored["info"]["expires"] is not None
    await gateway.shot(page, "keys-list")


async def test_edit_block_regenerate_and_delete_show_in_the_list_and_on_the_call_path(ui):
    gateway = await ui()
    made = await admin_post(gateway.client, "/key/generate",
                            {"key_alias": "ops-bot", "max_budget": 3, "guardrails": []})
    old = made["key"]
    page = await gateway.login()
    await gateway.open(page, "keys")

    details = await open_key(page, "ops-bot")
    await details.get_by_role("button", name="Edit").click()
    form = page.locator("#key-form")
    assert await form.get_by_label("Max budget (USD)").input_value() == "3"
    await form.get_by_label("Max budget (USD)").fill("12.5")
    await form.get_by_label("Tokens per minute (TPM)").fill("1000")
    await form.get_by_role("button", name="Save").click()
    await expect(row(page, "ops-bot")).to_contain_text("$12.50")
    await expect(row(page, "ops-bot")).to_contain_text("1,000 tpm")
    # Emptying a field clears it; what was not touched stays.
    details = await open_key(page, "ops-bot")
    await details.get_by_role("button", name="Edit").click()
    await form.get_by_label("Tokens per minute (TPM)").fill("")
    await form.get_by_role("button", name="Save").click()
    # The first save left "Key ops-bot saved." on the page: the form closing says this one is.
    await expect(page.locator("#key-edit")).to_be_hidden()
    await expect(page.locator("main > .notice")).to_have_text("Key ops-bot saved.")
    stored = (await admin_get(gateway.client, "/key/info", key=old))["info"]
    assert stored["tpm_limit"] is None and stored["max_budget"] == 12.5

    details = await open_key(page, "ops-bot")
    await details.get_by_role("button", name="Block", exact=True).click()
    await row(page, "Blocked").wait_for()
    assert await call(gateway, old) == 401
    await details.get_by_role("button", name="Unblock").click()
    await row(page, "Active").wait_for()
    assert await call(gateway, old) == 200
    # The details refresh after the list does: act on them once they have.
    await details.get_by_role("button", name="Block", exact=True).wait_for()

    await details.get_by_role("button", name="Regenerate").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Regenerate").click()
    new = await gateway.copied_key(page)
    assert new != old
    assert await call(gateway, old) == 401
    assert await call(gateway, new) == 200
    await close_secret(page, new)
    await expect(row(page, "ops-bot")).to_contain_text(new[-4:])

    details = await open_key(page, "ops-bot")
    await details.get_by_role("button", name="Delete").click()
    # Cancelling keeps the key.
    await page.locator("dialog.confirm").get_by_role("button", name="Cancel").click()
    assert await call(gateway, new) == 200
    await details.get_by_role("button", name="Delete").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Delete").click()
    await page.get_by_text("Key ops-bot deleted.").wait_for()
    await row(page, "ops-bot").wait_for(state="detached")
    assert await call(gateway, new) == 401


async def test_search_finds_a_key_by_alias_by_its_secret_and_pages_through_the_rest(ui):
    gateway = await ui()
    secrets = {}
    for n in range(23):
        made = await admin_post(gateway.client, "/key/generate",
                                {"key_alias": f"svc-{n:02d}", "team_id": "t-a" if n % 2 else None,
                                 "user_id": "una" if n == 5 else None})
        secrets[n] = made["key"]
    page = await gateway.login()
    await gateway.open(page, "keys")
    pager = page.locator("#key-table .pager")
    # The pager's count, whole: "1 in all" would also be found in "11 in all".
    counted = pager.locator("[aria-live]")
    await expect(counted).to_have_text("Page 1 of 2 · 23 in all")
    await pager.get_by_role("button", name="Next").click()
    await expect(counted).to_have_text("Page 2 of 2 · 23 in all")
    await expect(page.locator("#key-table tbody tr")).to_have_count(3)

    filters = page.locator("#key-filters")
    listed = page.locator("#key-table tbody tr")

    async def search(label, text, exact=False):
        await filters.get_by_role("button", name="Clear").click()
        await filters.get_by_label(label, exact=exact).fill(text)
        await filters.get_by_role("button", name="Search").click()

    # Exactly one row, the key searched for: not the one before, nor the list the Clear
    # button brings back on its way.
    await search("Key alias", "svc-07")
    await rows_are(listed, "svc-07")
    await expect(counted).to_have_text("Page 1 of 1 · 1 in all")

    await search("Key", secrets[12], exact=True)
    await rows_are(listed, "svc-12")
    await expect(counted).to_have_text("Page 1 of 1 · 1 in all")

    await search("User", "una")
    await rows_are(listed, "svc-05")
    await expect(counted).to_have_text("Page 1 of 1 · 1 in all")

    await search("Team", "t-a")
    await expect(counted).to_have_text("Page 1 of 1 · 11 in all")
    # Rows open from the keyboard too.
    await page.locator("#key-table tbody tr").first.focus()
    await page.keyboard.press("Enter")
    await page.locator("#key-details").get_by_text("t-a", exact=True).wait_for()
    await page.keyboard.press("Escape")
    await page.locator("#key-details").wait_for(state="hidden")


async def test_the_key_opened_last_shows_even_when_one_opened_before_answers_later(ui):
    gateway = await ui()
    slow = await admin_post(gateway.client, "/key/generate", {"key_alias": "slow-key"})
    quick = await admin_post(gateway.client, "/key/generate", {"key_alias": "quick-key"})
    page = await gateway.login()
    await page.add_init_script(NOTE_READS)
    await gateway.open(page, "keys")
    release = await hold_answer(page, f"key={slow['token']}")
    await row(page, "slow-key").click()
    # The dialog waits for the record, so the list is still there to open another key.
    await open_key(page, "quick-key")
    await release()
    assert await page.locator("#key-details-title").inner_text() == "quick-key"
    shown = await page.locator("#key-details-body").inner_text()
    assert quick["token"] in shown and slow["token"] not in shown


async def test_a_page_whose_session_has_ended_sends_the_browser_to_log_in(ui):
    gateway = await ui()
    page = await gateway.login()
    await gateway.open(page, "keys")
    await page.context.clear_cookies()
    await page.locator("#key-filters").get_by_role("button", name="Search").click()
    await page.wait_for_url(f"{gateway.base}/login?next=%2Fui%2Fkeys")


async def test_the_api_errors_show_next_to_the_field_they_are_about(ui):
    gateway = await ui()
    page = await gateway.login()
    await gateway.open(page, "keys")
    await page.get_by_role("button", name="Create key").click()
    form = page.locator("#key-form")
    await form.get_by_label("Expires after").fill("forever")
    await form.get_by_role("button", name="Create key").click()
    error = form.locator("#key-form-duration-error")
    await error.wait_for()
    assert "expected a number and a unit" in await error.inner_text()
    assert await form.get_by_label("Expires after").get_attribute("aria-invalid") == "true"

    await form.get_by_label("Expires after").fill("")
    await form.get_by_label("Metadata (JSON)").fill("{not json")
    await form.get_by_role("button", name="Create key").click()
    await form.locator("#key-form-metadata-error").wait_for()
    assert await form.locator("#key-form-duration-error").count() == 0

    # An internal user may only make keys in teams they are in: the API says so at the field.
    user = await gateway.login_sso("ivy", role="internal_user")
    # /user/new gave ivy a key already.
    before = (await admin_get(gateway.client, "/key/list", user_id="ivy"))["total_count"]
    await gateway.open(user, "keys")
    await user.get_by_role("button", name="Create key").click()
    form = user.locator("#key-form")
    await form.get_by_label("Team").fill("no-such-team")
    await form.get_by_role("button", name="Create key").click()
    error = form.locator("#key-form-team_id-error")
    await error.wait_for()
    assert "not assigned to team=no-such-team" in await error.inner_text()
    assert not await user.locator("#key-secret").is_visible()
    assert (await admin_get(gateway.client, "/key/list", user_id="ivy"))["total_count"] == before


# A proxy admin's viewer is refused every write with a 403; an internal user's viewer gets
# LiteLLM's 401 "Only proxy admin can be used to generate, delete, update ..." for routes its
# role lacks (management-api.md 1.4-1.5), and stays logged in.
@pytest.mark.parametrize("role, refusal", [("internal_user_viewer", 401),
                                           ("proxy_admin_viewer", 403)])
async def test_a_viewer_sees_no_buttons_that_change_keys_and_the_api_refuses_them(ui, role,
                                                                                  refusal):
    gateway = await ui()
    made = await admin_post(gateway.client, "/key/generate",
                            {"key_alias": "vera-key", "user_id": "vera"})
    page = await gateway.login_sso("vera", role=role)
    await gateway.open(page, "keys")
    assert await page.get_by_role("button", name="Create key").count() == 0
    details = await open_key(page, "vera-key")
    buttons = await details.get_by_role("button").all_inner_texts()
    assert buttons == ["Close"]
    # The session itself, with its CSRF token, is refused what the page does not offer.
    for path, body in (("/key/generate", {"key_alias": "sneaky"}),
                       ("/key/update", {"key": made["token"], "max_budget": 1}),
                       ("/key/delete", {"keys": [made["token"]]}),
                       ("/key/regenerate", {"key": made["token"]})):
        status = await page.evaluate(
            "([path, body]) => gh.api('POST', path, {body}).then(() => 200, (e) => e.status)",
            [path, body])
        assert status == refusal, path
    assert page.url.endswith("/ui/keys")
    assert (await admin_get(gateway.client, "/key/list", key_alias="sneaky"))["total_count"] == 0
    kept = (await admin_get(gateway.client, "/key/info", key=made["token"]))["info"]
    assert kept["max_budget"] is None and kept["key_name"] == made["key_name"]


async def test_an_internal_user_sees_and_makes_only_their_own_keys(ui):
    gateway = await ui()
    await admin_post(gateway.client, "/key/generate", {"key_alias": "olga-key", "user_id": "olga"})
    await admin_post(gateway.client, "/key/generate", {"key_alias": "ian-old", "user_id": "ian"})
    page = await gateway.login_sso("ian", role="internal_user")
    await gateway.open(page, "keys")
    await row(page, "ian-old").wait_for()
    assert await row(page, "olga-key").count() == 0
    assert await page.locator("#key-filters").get_by_label("User").count() == 0

    await page.get_by_role("button", name="Create key").click()
    form = page.locator("#key-form")
    owner = form.get_by_label("User")
    assert await owner.input_value() == "ian" and await owner.is_disabled()
    await form.get_by_label("Key alias").fill("ian-new")
    await form.get_by_role("button", name="Create key").click()
    secret = await gateway.copied_key(page)
    await close_secret(page, secret)
    await row(page, "ian-new").wait_for()
    assert (await admin_get(gateway.client, "/key/info", key=secret))["info"]["user_id"] == "ian"
    assert await call(gateway, secret) == 200


async def test_the_keys_page_fits_a_phone(ui):
    gateway = await ui()
    await admin_post(gateway.client, "/key/generate",
                     {"key_alias": "a-rather-long-key-alias-for-a-phone", "team_id": "t-phone",
                      "models": ["gpt-4o", "mock-echo"], "max_budget": 10})
    page = await gateway.login(viewport=PHONE)
    await gateway.open(page, "keys")
    await row(page, "a-rather-long").wait_for()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await gateway.shot(page, "keys-phone")
    await page.get_by_role("button", name="Create key").click()
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.locator("#key-form").get_by_role("button", name="Cancel").click()
    details = await open_key(page, "a-rather-long-key-alias-for-a-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in await details.get_by_role("button").all():
        box = await button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    await gateway.shot(page, "keys-phone-details")
