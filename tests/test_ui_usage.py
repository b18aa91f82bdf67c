"""The Usage page: calls made through the gateway with two keys in two teams on two models, and
spend seeded on the days before, show up as the right totals, a bar per day whose tooltip gives
its value, groups that follow the chosen dimension, and a CSV with a row per day and group
(spreadsheet formulas defused); an internal user sees only their own calls, on a phone too."""

import csv
import time
from datetime import UTC, datetime

from admin_kit import PRICED, admin_post, bearer, spend_row
from gatehouse.app import GATEWAY
from playwright.async_api import expect
from ui_kit import NOTE_READS, PHONE, hold_answer

DAY = 86400
EVIL_TAG = "=HYPERLINK(\"http://evil.example\")"


def day_of(t):
    return datetime.fromtimestamp(t, UTC).date().isoformat()


async def made_calls(gateway, fake_upstream, chat):
    """Teams Search (key search-bot, gpt-4o) and Billing (key billing-bot, gpt-4o-mini): real
    calls today, and seeded spend on each of the five days before. Returns (total spend,
    requests, the two key hashes)."""
    client = gateway.client
    search = (await admin_post(client, "/team/new", {"team_alias": "Search"}))["team_id"]
    billing = (await admin_post(client, "/team/new", {"team_alias": "Billing"}))["team_id"]
    key_s = await admin_post(client, "/key/generate", {"team_id": search, "key_alias": "search-bot"})
    key_b = await admin_post(client, "/key/generate", {"team_id": billing,
                                                        "key_alias": "billing-bot"})
    cost = 0.0
    for key, model in ((key_s, "gpt-4o"), (key_s, "gpt-4o"), (key_b, "gpt-4o-mini")):
        resp = await client.post("/v1/chat/completions", json=chat(model=model),
                                 headers=bearer(key["key"]))
        assert resp.status == 200, await resp.text()
        cost += float(resp.headers["x-litellm-response-cost"])
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()
    now = time.time()
    seeded = []
    for back in range(1, 6):
        seeded += [
            spend_row(now - back * DAY, key=key_s["token"], owner=None, team=search,
                      model="gpt-4o", spend=0.25 * back, prompt=100 * back, completion=50,
                      tags=["search"]),
            spend_row(now - back * DAY, key=key_b["token"], owner=None, team=billing,
                      model="gpt-4o-mini", spend=0.125 * back, prompt=10, completion=10,
                      tags=[EVIL_TAG])]
    await gw.store.write_spend(seeded)
    return cost + 0.375 * 15, 3 + 10, key_s["token"], key_b["token"]


def cells(page, column):
    return page.locator(f"#usage-table tbody tr td:nth-child({column})")


async def bar_titles(page):
    return await page.locator("#usage-chart svg rect title").all_text_contents()


async def test_totals_bars_per_day_dimensions_and_csv(ui, fake_upstream, chat, tmp_path):
    gateway = await ui({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED),
                                       fake_upstream.model_entry("gpt-4o-mini", **PRICED)]})
    total, requests, _, _ = await made_calls(gateway, fake_upstream, chat)
    page = await gateway.login()
    await gateway.open(page, "usage")

    def stat(name):
        return page.locator("#usage-totals .stat", has_text=name).locator(".value")
    await expect(stat("Spend")).to_have_text(f"${total:.2f}")
    await expect(stat("Requests")).to_have_text(str(requests))
    await expect(stat("Failed")).to_have_text("0")

    # By key (the default), per day over the last 30 days: a bar for each key on each day,
    # its tooltip naming the day, the key and the value.
    await expect(page.get_by_role("heading", name="Spend per day by key")).to_be_visible()
    titles = await bar_titles(page)
    now = time.time()
    days = [day_of(now - back * DAY) for back in range(29, -1, -1)]
    assert len(titles) == 2 * len(days)
    assert {title.split(" · ")[0] for title in titles} == set(days)
    three_back = day_of(now - 3 * DAY)
    assert f"{three_back} · search-bot: $0.750" in titles
    assert f"{three_back} · billing-bot: $0.375" in titles
    assert f"{day_of(now - 10 * DAY)} · search-bot: $0.00" in titles
    await expect(cells(page, 1)).to_have_text(["search-bot", "billing-bot"])

    await page.get_by_label("Group by").select_option("team")
    await page.get_by_role("heading", name="Spend per day by team").wait_for()
    await expect(cells(page, 1)).to_have_text(["Search", "Billing"])
    assert f"{three_back} · Search: $0.750" in await bar_titles(page)
    assert await page.locator(".legend > span").all_inner_texts() == ["Search", "Billing"]
    await gateway.shot(page, "usage")

    await page.get_by_label("Group by").select_option("model")
    await page.get_by_role("heading", name="Spend per day by model").wait_for()
    await expect(cells(page, 1)).to_have_text(["gpt-4o", "gpt-4o-mini"])
    # Requests, per month: one bar per model for each month the range touches.
    await page.get_by_label("Show").select_option("api_requests")
    await page.get_by_label("Per").select_option("month")
    await page.get_by_role("heading", name="Requests per month by model").wait_for()
    months = sorted({day[:7] for day in days})
    titles = await bar_titles(page)
    assert len(titles) == 2 * len(months)
    assert sum(int(t.rsplit(": ", 1)[1]) for t in titles if "gpt-4o-mini" in t) == 6
    # Per week: each bar is labelled with the Monday its week starts on.
    await page.get_by_label("Per").select_option("week")
    await page.get_by_role("heading", name="Requests per week by model").wait_for()
    titles = await bar_titles(page)
    assert all(datetime.fromisoformat(t.split(" · ")[0]).weekday() == 0 for t in titles)
    assert sum(int(t.rsplit(": ", 1)[1]) for t in titles if "gpt-4o: " in t) == 7

    await page.get_by_label("Per").select_option("day")
    await page.get_by_role("heading", name="Requests per day by model").wait_for()
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download CSV").click()
    download = await download_info.value
    saved = tmp_path / "usage.csv"
    await download.save_as(saved)
    with saved.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # A row per day and model that had calls: today's two and the five days before.
    assert len(rows) == 12
    row = next(r for r in rows if r["Period"] == three_back and r["Model"] == "gpt-4o")
    assert (row["spend"], row["api_requests"], row["prompt_tokens"], row["total_tokens"]) == (
        "0.75", "1", "300", "350")

    # A tag written as a spreadsheet formula stays text in the CSV.
    await page.get_by_label("Group by").select_option("tag")
    await page.get_by_role("heading", name="Requests per day by tag").wait_for()
    assert sorted(await cells(page, 1).all_inner_texts()) == sorted(["search", EVIL_TAG])
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Download CSV").click()
    await (await download_info.value).save_as(saved)
    with saved.open(newline="") as handle:
        tags = {r["Tag"] for r in csv.DictReader(handle)}
    assert tags == {"search", "'" + EVIL_TAG}


async def test_an_internal_user_sees_only_their_own_calls_on_a_phone(ui):
    gateway = await ui()
    client = gateway.client
    page = await gateway.login_sso("ivy", role="internal_user", viewport=PHONE)
    own = await admin_post(client, "/key/generate", {"user_id": "ivy", "key_alias": "ivy-key"})
    await admin_post(client, "/user/new", {"user_id": "max", "user_role": "internal_user"})
    other = await admin_post(client, "/key/generate", {"user_id": "max", "key_alias": "max-key"})
    now = time.time()
    await client.app[GATEWAY].store.write_spend([
        spend_row(now - DAY, key=own["token"], owner="ivy", spend=0.5, prompt=5, completion=5),
        spend_row(now - DAY, key=other["token"], owner="max", spend=4.0, prompt=5,
                  completion=5, end_user="cust-1")])
    await gateway.open(page, "usage")

    spend = page.locator("#usage-totals .stat", has_text="Spend").locator(".value")
    await expect(spend).to_have_text("$0.500")
    await expect(cells(page, 1)).to_have_text(["ivy-key"])
    # Customers are the admins' to see: not offered here.
    options = await page.get_by_label("Group by").locator("option").all_inner_texts()
    assert options == ["Key", "Team", "Model", "Tag"]
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    await gateway.shot(page, "usage-phone")


async def test_the_spend_axis_shows_each_amount_whole_with_its_dollar_sign(ui):
    gateway = await ui()
    client = gateway.client
    key = await admin_post(client, "/key/generate", {"key_alias": "big-spender"})
    await client.app[GATEWAY].store.write_spend([
        spend_row(time.time() - DAY, key=key["token"], owner=None, spend=12345.678, prompt=5,
                  completion=5)])
    page = await gateway.login()
    await gateway.open(page, "usage")
    await expect(page.get_by_role("heading", name="Spend per day by key")).to_be_visible()
    # Each label of the y-axis, and whether it lies wholly in the chart's view: a long one
    # running past the left edge shows cut off, its "$" first.
    labels = await page.evaluate("""() => {
        const chart = document.querySelector("#usage-chart svg");
        const left = chart.viewBox.baseVal.x;
        return [...chart.querySelectorAll(":scope > text[text-anchor=end]")]
            .map((label) => [label.textContent, label.getBBox().x >= left]);
    }""")
    # In round steps, up to the first at or over the highest bar.
    assert labels == [["$0.00", True], ["$4000.00", True], ["$8000.00", True],
                      ["$12000.00", True], ["$16000.00", True]]
    # Requests are counts: whole steps, no "$".
    await page.get_by_label("Show").select_option("api_requests")
    await page.get_by_role("heading", name="Requests per day by key").wait_for()
    assert await page.locator("#usage-chart svg > text[text-anchor=end]").last.text_content() == "1"


async def test_the_last_grouping_chosen_shows_even_when_an_earlier_one_answers_later(ui):
    gateway = await ui()
    client = gateway.client
    key = await admin_post(client, "/key/generate", {"key_alias": "k"})
    await client.app[GATEWAY].store.write_spend([
        spend_row(time.time() - DAY, key=key["token"], owner=None, team="t-slow", model="gpt-4",
                  spend=0.5, prompt=5, completion=5)])
    page = await gateway.login()
    await page.add_init_script(NOTE_READS)
    await gateway.open(page, "usage")
    report = page.locator("#usage-report")
    release = await hold_answer(page, "/team/daily/activity")
    await page.get_by_label("Group by").select_option("team")
    # Until the teams answer, the keys' chart stays, marked as not what was asked for.
    await expect(report).to_have_attribute("aria-busy", "true")
    await expect(page.get_by_role("heading", name="Spend per day by key")).to_be_visible()
    await page.get_by_label("Group by").select_option("model")
    await expect(page.get_by_role("heading", name="Spend per day by model")).to_be_visible()
    await release()
    assert await page.locator("#usage-chart-title").inner_text() == "Spend per day by model"
    assert await cells(page, 1).all_inner_texts() == ["gpt-4"]
    assert await report.get_attribute("aria-busy") == "false"
