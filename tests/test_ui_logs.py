"""The admin UI's Logs page: the calls made through the gateway, filtered by status and by
guardrail verdict, each opening with its guardrails' records, status and timings; an internal
user sees only the calls of their own keys, and no page ever shows a key."""

from admin_kit import MASTER as ADMIN_KEY, PRICED, admin_post, bearer, settle
from doubles import PLUGINS, guardrail
from playwright.async_api import expect
from ui_kit import PHONE, rows_are

GUARDRAILS = [guardrail("blocker", block_word="forbidden", default_on=True),
              guardrail("watcher", block_word="plan", default_on=True, enforce=False)]


async def logs_gateway(ui, fake_upstream):
    return await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                     "guardrails": GUARDRAILS}, plugins=PLUGINS)


async def call(gateway, key, content):
    resp = await gateway.client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
    return resp.status


async def filter_by(page, rows, first_row, count, **choices):
    """Filter the list and wait until it shows ``count`` rows, the first holding
    ``first_row`` (while a page loads, its one row says so)."""
    for label, option in choices.items():
        await page.get_by_label(label).select_option(label=option)
    await page.get_by_role("button", name="Filter").click()
    await rows_are(rows, first_row, *[None] * (count - 1))


async def test_logs_show_each_call_with_its_guardrail_verdicts(ui, fake_upstream):
    gateway = await logs_gateway(ui, fake_upstream)
    key = await admin_post(gateway.client, "/key/generate", {"key_alias": "growth-app"})
    statuses = [await call(gateway, key["key"], text)
                for text in ("hello", "a forbidden word", "the plan")]
    assert statuses == [200, 400, 200]
    await settle(gateway.client)

    page = await gateway.login()
    await gateway.open(page, "logs")
    rows = page.locator("#logs-table tbody tr")
    await expect(rows).to_have_count(3)
    listed = await page.locator("#logs-table").inner_text()
    assert listed.count("growth-app") == 3
    assert "3 in all" in listed
    assert key["key"] not in await page.content()
    # Newest first: the monitored call, then the blocked one.
    assert "would have intervened" in await rows.nth(0).inner_text()
    assert "failure" in await rows.nth(1).inner_text()
    await gateway.shot(page, "logs-list")

    await filter_by(page, rows, "blocker intervened", 1, Status="Failure")
    await filter_by(page, rows, "watcher would have intervened", 1,
                    **{"Status": "All", "Guardrail verdict": "Would have intervened"})
    await filter_by(page, rows, "failure", 1, **{"Status": "Failure", "Guardrail verdict": "Any"})
    await rows.first.focus()
    await page.keyboard.press("Enter")
    shown = page.locator("#log-call")
    await shown.get_by_role("heading", name="Guardrails").wait_for()
    summary = await page.locator("#log-call-summary").inner_text()
    assert "failure" in summary and "400" in summary and "Probe blocker saw forbidden" in summary
    assert "Duration" in summary and " ms" in summary
    guardrails = page.locator("#log-call-guardrails tbody tr")

    def run_of(name):
        return guardrails.filter(has=page.get_by_role("cell", name=name, exact=True))

    blocker = await run_of("blocker").inner_text()
    assert "pre_call" in blocker and "intervened" in blocker and " ms" in blocker
    watcher = await run_of("watcher").inner_text()
    assert "not run" in watcher and "ended the call" in watcher
    assert "Not stored" in await page.locator("#log-call-request").inner_text()
    await gateway.shot(page, "logs-call")
    await shown.get_by_role("button", name="Close").click()
    await expect(shown).to_be_hidden()


async def test_an_internal_user_sees_only_their_own_calls_and_the_page_fits_a_phone(
        ui, fake_upstream):
    gateway = await logs_gateway(ui, fake_upstream)
    others = await admin_post(gateway.client, "/key/generate", {"key_alias": "someone-else"})
    page = await gateway.login_sso("ivy", role="internal_user", viewport=PHONE)
    mine = await admin_post(gateway.client, "/key/generate", {"key_alias": "ivy-app",
                                                              "user_id": "ivy"})
    assert await call(gateway, mine["key"], "hello") == 200
    assert await call(gateway, others["key"], "hello") == 200
    await settle(gateway.client)

    await gateway.open(page, "logs")
    await expect(page.locator("#logs-table")).to_contain_text("1 in all")
    listed = await page.locator("#logs-table").inner_text()
    assert "ivy-app" in listed and "someone-else" not in listed
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await gateway.shot(page, "logs-phone")


async def test_with_store_prompts_a_call_opens_with_its_request_and_reply_text(
        ui, fake_upstream):
    gateway = await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                        "guardrails": GUARDRAILS,
                        "general_settings": {"store_prompts_in_spend_logs": True}},
                       plugins=PLUGINS)
    key = await admin_post(gateway.client, "/key/generate", {"key_alias": "growth-app"})
    assert [await call(gateway, key["key"], text)
            for text in ("hello", "a forbidden word")] == [200, 400]
    await settle(gateway.client)

    page = await gateway.login()
    await gateway.open(page, "logs")
    rows = page.locator("#logs-table tbody tr")
    await expect(rows).to_have_count(2)
    shown = page.locator("#log-call")
    request, reply = page.locator("#log-call-request"), page.locator("#log-call-response")
    await rows.nth(1).click()
    await expect(request).to_contain_text('"content": "hello"')
    await expect(reply).to_contain_text('"role": "assistant"')
    await shown.get_by_role("button", name="Close").click()
    await expect(shown).to_be_hidden()
    await rows.nth(0).click()
    await expect(request).to_contain_text('"content": "a forbidden word"')
    await expect(reply).to_have_text("None: the call got no reply.")


async def test_a_check_demoted_past_its_latency_budget_says_so_in_the_call(
        ui, fake_upstream, fake_vendor):
    vendor = await fake_vendor({"flagged": True})
    vendor.stall = True  # answers once released: past the budget
    gateway = await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                        "guardrails": [guardrail("check", type_="vendor_check",
                                                 vendor=vendor.url, default_on=True,
                                                 latency_budget_ms=50,
                                                 on_budget_exceeded="demote")]},
                       plugins=PLUGINS)
    assert await call(gateway, ADMIN_KEY, "a bomb") == 200
    vendor.release.set()
    await settle(gateway.client)

    page = await gateway.login()
    await gateway.open(page, "logs")
    rows = page.locator("#logs-table tbody tr")
    await rows_are(rows, "check would have intervened")
    await rows.first.click()
    run = page.locator("#log-call-guardrails tbody tr")
    await expect(run).to_contain_text("would have intervened")
    await expect(run).to_contain_text("demoted past its latency budget")


async def test_a_shadow_that_disagrees_shows_in_the_list_and_the_call(ui, fake_upstream):
    # The candidate would pass what the blocker refuses: a disagreement even though it passed.
    gateway = await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                        "guardrails": [
                            guardrail("blocker", block_word="forbidden", default_on=True),
                            guardrail("candidate", block_word="plan", shadow_of="blocker")]},
                       plugins=PLUGINS)
    assert await call(gateway, ADMIN_KEY, "a forbidden word") == 400
    await settle(gateway.client)

    page = await gateway.login()
    await gateway.open(page, "logs")
    rows = page.locator("#logs-table tbody tr")
    await rows_are(rows, "candidate passed disagrees")
    await rows.first.click()
    await expect(page.locator("#log-call-guardrails")).to_contain_text(
        "shadow of blocker — disagrees: this one passed, blocker blocked")
