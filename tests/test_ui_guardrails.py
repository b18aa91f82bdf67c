"""The Guardrails page: every served guardrail with its modes and where it is defined, live
verdict counts from the calls the gateway served (blocks, monitor-only verdicts, cache hits),
database guardrails added, edited and deleted from the browser and served to the next call, a
playground that blocks and rewrites pasted text, and a viewer who sees no buttons that change
anything and is refused by the API."""

import time

from admin_kit import ADMIN, admin_post, until
from doubles import PLUGINS, guardrail
from gatehouse.app import GATEWAY
from ui_kit import PHONE, table_rows

KEYWORDS = {"guardrail_name": "kw", "litellm_params": {
    "guardrail": "banned_keywords", "mode": "pre_call", "default_on": True,
    "banned_keywords_list": ["zebra"]}}
WATCH = {"guardrail_name": "kw-watch", "litellm_params": {
    "guardrail": "banned_keywords", "mode": "during_call", "default_on": True,
    "enforce": False, "banned_keywords_list": ["lion"]}}
# Tried beside kw: it would pass "zebra", which kw blocks, and block "lion", which kw passes.
CANDIDATE = {"guardrail_name": "kw-candidate", "litellm_params": {
    "guardrail": "banned_keywords", "mode": "pre_call", "shadow_of": "kw",
    "banned_keywords_list": ["lion"]}}
SECRETS = {"guardrail_name": "hide-secrets", "litellm_params": {
    "guardrail": "hide-secrets", "mode": "pre_call"}}
API_KEY = "sk_1234567890abcdef"


async def chat(gateway, text):
    resp = await gateway.client.post("/v1/chat/completions", headers=ADMIN, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    return resp.status


async def recorded(gateway):
    """The calls so far in the database, as the page's counts read them."""
    served = gateway.client.app[GATEWAY]
    await served.call_log.drain()
    await served.accounting.flush()


async def rows(page):
    return await table_rows(page, "#guardrail-table")


async def test_the_page_counts_blocks_monitor_verdicts_and_cache_hits(ui, fake_vendor):
    vendor = await fake_vendor({})
    gateway = await ui({"guardrails": [
        KEYWORDS, WATCH, CANDIDATE,
        guardrail("check", type_="vendor_check", vendor=vendor.url + "/v1", default_on=True,
                  cache_ttl=60)]}, plugins=PLUGINS, load=["banned_keywords"])
    for text, status in (("hello", 200), ("hello", 200), ("a lion", 200), ("a zebra", 400)):
        assert await chat(gateway, text) == status
    await recorded(gateway)

    page = await gateway.login()
    await gateway.open(page, "guardrails")
    shown = await rows(page)
    assert set(shown) == {"kw", "kw-watch", "kw-candidate", "check"}
    kw, watch, check = shown["kw"], shown["kw-watch"], shown["check"]
    assert kw["Type and modes"] == "banned_keywords\npre_call"
    assert kw["Setup"] == "config file\ndefault on"
    assert (kw["Runs"], kw["Passed"], kw["Intervened"]) == ("4", "3", "1")
    # enforce: false -- the lion call went on, and the page says what the guardrail would
    # have done. It never ran on the call kw blocked first.
    assert "monitor only" in watch["Setup"]
    assert (watch["Runs"], watch["Would have"], watch["Intervened"],
            watch["Not run"]) == ("3", "1", "0", "1")
    assert "shadow of kw" in shown["kw-candidate"]["Setup"]
    assert shown["kw-candidate"]["Disagreed"] == "2"
    # The second "hello" came from the verdict cache.
    assert "cache 60s" in check["Setup"]
    assert check["Cache hits"] == "50% (3/6)", check
    await gateway.shot(page, "guardrails")

    # A call of three days ago counts in the last week, not in the last day.
    await gateway.client.app[GATEWAY].store.write_spend([{
        "id": "old-call", "request_id": "old-call", "call_type": "chat_completion",
        "model": "gpt-4o", "start_time": time.time() - 3 * 86400,
        "end_time": time.time() - 3 * 86400, "status": 200, "spend": 0.0,
        "metadata": {"guardrail_information": [{
            "guardrail_name": "kw", "guardrail_mode": "pre_call",
            "guardrail_status": "guardrail_intervened", "duration": 0.001}]}}])
    await page.get_by_label("Verdicts over").select_option("Last week")

    async def counted_again():
        return (await rows(page)).get("kw", {}).get("Runs") == "5"

    await until(counted_again)
    assert (await rows(page))["kw"]["Intervened"] == "2"

    # On a phone the page does not scroll sideways: the table scrolls inside its box.
    phone = await gateway.login(viewport=PHONE)
    await gateway.open(phone, "guardrails")
    await rows(phone)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_a_database_guardrail_added_in_the_browser_applies_to_the_next_call(ui):
    gateway = await ui({"guardrails": [KEYWORDS]}, load=["banned_keywords"])
    page = await gateway.login()
    await gateway.open(page, "guardrails")
    assert await chat(gateway, "a tiger") == 200

    await page.get_by_role("button", name="Add guardrail").click()
    dialog = page.locator("#guardrail-edit")
    await dialog.get_by_label("Name").fill("no-tigers")
    await dialog.get_by_label("Type").fill("banned_keywords")
    await dialog.get_by_label("Modes").fill("pre_call")
    await dialog.get_by_label("Run on every call").check()
    params = dialog.get_by_label("Other params (JSON)")
    await params.fill('{"banned_keywords_list": ["tiger"')
    await dialog.get_by_role("button", name="Save").click()
    # A mistake is shown next to the field it is in.
    assert await dialog.locator(".field-error").inner_text() == "Not valid JSON"
    await params.fill('{"banned_keywords_list": ["tiger"]}')
    await dialog.get_by_role("button", name="Save").click()
    await page.get_by_text("Saved no-tigers").wait_for()
    assert (await rows(page))["no-tigers"]["Setup"] == "database\ndefault on"
    assert await chat(gateway, "a tiger") == 400

    await page.get_by_role("button", name="Edit no-tigers").click()
    assert await dialog.get_by_label("Name").input_value() == "no-tigers"
    await params.fill('{"banned_keywords_list": ["bear"]}')
    await dialog.get_by_role("button", name="Save").click()
    # The dialog closes once the change is saved.
    await dialog.wait_for(state="hidden")
    assert await chat(gateway, "a tiger") == 200
    assert await chat(gateway, "a bear") == 400

    # Config guardrails have no buttons: they are changed in the config file.
    assert await page.get_by_role("button", name="Edit kw").count() == 0
    await recorded(gateway)
    await page.get_by_role("button", name="Delete no-tigers").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Delete").click()
    await page.get_by_text("Deleted no-tigers").wait_for()
    assert await chat(gateway, "a bear") == 200
    # Its verdicts stay on the page, for the period they fall in.
    gone = (await rows(page))["no-tigers"]
    assert (gone["Setup"], gone["Runs"], gone["Intervened"]) == ("no longer served", "3", "2")
    assert await page.get_by_role("button", name="Edit no-tigers").count() == 0


async def test_the_playground_shows_a_block_a_pass_and_a_rewrite(ui):
    gateway = await ui({"guardrails": [KEYWORDS, SECRETS]},
                       load=["banned_keywords", "secrets"])
    page = await gateway.login()
    await gateway.open(page, "guardrails")
    form = page.locator("#playground")
    verdict = page.locator("#verdict")
    run = form.get_by_role("button", name="Run guardrail")

    await form.get_by_label("Guardrail").select_option("kw")
    await form.get_by_label("Text").fill("the zebra crossed")
    await run.click()
    await verdict.get_by_text("Blocked").wait_for()
    assert "zebra" in await verdict.inner_text()

    await form.get_by_label("Text").fill("the horse crossed")
    await run.click()
    await verdict.get_by_text("Passed").wait_for()

    await form.get_by_label("Guardrail").select_option("hide-secrets")
    await form.get_by_label("Text").fill(f"Hey, how's it going, API_KEY = '{API_KEY}'")
    await run.click()
    await verdict.get_by_text("Rewritten").wait_for()
    rewritten = await verdict.locator("pre").inner_text()
    assert rewritten == "Hey, how's it going, API_KEY = '[REDACTED]'"
    await gateway.shot(page, "guardrails-playground")


async def test_a_viewer_sees_counts_but_no_buttons_and_the_api_refuses_it(ui):
    gateway = await ui({"guardrails": [KEYWORDS]}, load=["banned_keywords"])
    await admin_post(gateway.client, "/guardrails", {"guardrail": {
        "guardrail_name": "stored", "litellm_params": {
            "guardrail": "banned_keywords", "mode": "pre_call",
            "banned_keywords_list": ["tiger"]}}})
    assert await chat(gateway, "a zebra") == 400
    await recorded(gateway)
    page = await gateway.login_sso("vera", role="proxy_admin_viewer")
    await gateway.open(page, "guardrails")
    shown = await rows(page)
    assert shown["kw"]["Intervened"] == "1"
    assert shown["stored"]["Setup"] == "database"
    for name in ("Add guardrail", "Edit stored", "Delete stored"):
        assert await page.get_by_role("button", name=name).count() == 0, name
    # The playground changes nothing: a viewer may try a guardrail.
    await page.locator("#playground").get_by_label("Text").fill("a zebra")
    await page.get_by_role("button", name="Run guardrail").click()
    await page.locator("#verdict").get_by_text("Blocked").wait_for()
    status = await page.evaluate("""gh.api("POST", "/guardrails", {body: {guardrail: {
        guardrail_name: "mine", litellm_params: {guardrail: "banned_keywords"}}}})
        .then(() => 200, (error) => error.status)""")
    assert status == 403
