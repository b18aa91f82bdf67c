"""Regenerate the screenshots the README shows: the admin UI (ui-keys.png, ui-logs.png,
ui-usage.png) and the API docs (docs-page.png).

    python docs/images/make_screenshots.py [--out docs/images] [--chromium /usr/bin/chromium]

Starts a gateway in this process on a throw-away SQLite database, with offline ``mock/`` models
priced like real ones and a ``banned_keywords`` guardrail (the bundled plugin must be installed:
``pip install -e plugins/banned_keywords``). It makes three teams with budgets and a key in each
through the admin API, calls the gateway with those keys (one call is blocked by the guardrail),
adds a month of earlier spend so the Usage chart has days to show, logs in to /ui with the
password and takes each page, then the Swagger UI at /, at 1280x800 in a system Chromium
driven by Playwright.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect

from gatehouse.app import GATEWAY, Runner, create_app
from gatehouse.config import config_from_dict

VIEWPORT = {"width": 1280, "height": 800}
PRICE = {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5}
DAY = 86400
# team id, name, budget, key alias, model, calls made today
TEAMS = [("t-search", "Search", 200, "search-api", "gpt-4o", 6),
         ("t-billing", "Billing", 50, "billing-worker", "gpt-4o-mini", 4),
         ("t-support", "Support", 120, "support-bot", "claude-3-5-sonnet", 3)]


def config(master_key: str) -> dict:
    return {
        "model_list": [{"model_name": name, "params": {"model": f"mock/{name}", **PRICE}}
                       for name in ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")],
        "guardrails": [{"guardrail_name": "no-codenames", "params": {
            "guardrail": "banned_keywords", "mode": "pre_call", "default_on": False,
            "banned_keywords_list": ["Project Falcon"]}}],
        "general_settings": {"master_key": master_key},
    }


async def seed(base: str, master_key: str, app: web.Application) -> None:
    admin = {"Authorization": f"Bearer {master_key}"}
    async with aiohttp.ClientSession(base) as http:
        async def post(path, body, headers=admin):
            async with http.post(path, json=body, headers=headers) as resp:
                return resp.status, await resp.json()

        keys = {}
        for team_id, name, budget, alias, model, _ in TEAMS:
            await post("/team/new", {"team_id": team_id, "team_alias": name,
                                     "max_budget": budget, "budget_duration": "30d"})
            _, made = await post("/key/generate", {
                "key_alias": alias, "team_id": team_id, "models": [model],
                "guardrails": ["no-codenames"], "rpm_limit": 600})
            keys[team_id] = made
        await post("/key/generate", {"key_alias": "ci-smoke-tests", "max_budget": 5,
                                     "duration": "30d"})
        for team_id, _, _, _, model, calls in TEAMS:
            auth = {"Authorization": f"Bearer {keys[team_id]['key']}"}
            for n in range(calls):
                await post("/v1/chat/completions", {"model": model, "messages": [
                    {"role": "user", "content": f"Summarise ticket {n} in three bullet points"}]},
                    auth)
        auth = {"Authorization": f"Bearer {keys['t-search']['key']}"}
        status, _ = await post("/v1/chat/completions", {"model": "gpt-4o", "messages": [
            {"role": "user", "content": "What is the launch date of Project Falcon?"}]}, auth)
        assert status == 400, "the guardrail should have blocked the call"

    gateway = app[GATEWAY]
    await gateway.call_log.drain()
    await gateway.accounting.flush()
    # The month before, as the gateway would have logged it: quieter at weekends.
    now = time.time()
    rows = []
    for back in range(1, 30):
        start = now - back * DAY
        weekend = time.gmtime(start).tm_wday >= 5
        for i, (team_id, _, _, _, model, calls) in enumerate(TEAMS):
            for _ in range((calls + (back * (i + 2)) % 5) // (3 if weekend else 1)):
                prompt, completion = 3000 + 170 * (back % 7), 500 + 40 * i
                rows.append({
                    "id": uuid.uuid4().hex, "request_id": uuid.uuid4().hex,
                    "call_type": "acompletion", "model": model,
                    "key_hash": keys[team_id]["token"], "team_id": team_id, "user_id": None,
                    "end_user": None, "tags": [], "metadata": {},
                    "prompt_tokens": prompt, "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "spend": prompt * PRICE["input_cost_per_token"]
                    + completion * PRICE["output_cost_per_token"],
                    "start_time": start, "end_time": start + 0.8, "status": 200})
    await gateway.store.write_spend(rows)


async def shoot(base: str, master_key: str, out: Path, chromium: str) -> list[Path]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium,
                                                   args=["--no-sandbox"])
        page = await browser.new_page(viewport=VIEWPORT)
        await page.goto(f"{base}/login")
        await page.get_by_label("Username").fill("admin")
        await page.get_by_label("Password").fill(master_key)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{base}/ui/**")

        async def open_page(name: str) -> Page:
            await page.goto(f"{base}/ui/{name}")
            await page.wait_for_load_state("networkidle")
            return page

        shots = []

        async def save(name: str) -> None:
            shots.append(out / f"{name}.png")
            await page.screenshot(path=shots[-1])

        await open_page("keys")
        await page.locator("#key-table tbody tr", has_text="search-api").wait_for()
        await save("ui-keys")

        await open_page("logs")
        await page.get_by_label("Guardrail verdict").select_option("guardrail_intervened")
        await page.get_by_role("button", name="Filter").click()
        # The list before filtering has that row too: wait for the filtered one.
        await expect(page.locator("#logs-table [aria-busy=true]")).to_have_count(0)
        await page.locator("#logs-table tbody tr", has_text="no-codenames").click()
        await page.locator("#log-call-guardrails tbody tr").wait_for()
        await save("ui-logs")

        await open_page("usage")
        await page.get_by_label("Group by").select_option("team")
        await page.get_by_role("heading", name="Spend per day by team").wait_for()
        await save("ui-usage")

        await page.goto(f"{base}/")
        await page.locator(".opblock-summary-path").first.wait_for()
        await save("docs-page")
        await browser.close()
        return shots


async def main(out: Path, chromium: str) -> None:
    master_key = f"sk-{secrets.token_hex(16)}"
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(config_from_dict(config(master_key), base_dir=Path(folder)),
                         load=["banned_keywords"])
        runner = Runner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        try:
            await seed(base, master_key, app)
            for path in await shoot(base, master_key, out, chromium):
                print(f"{path} ({path.stat().st_size // 1024} KB)")
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="where the PNGs go (default: this folder)")
    parser.add_argument("--chromium", default="/usr/bin/chromium",
                        help="the Chromium to drive (default: Debian's /usr/bin/chromium)")
    args = parser.parse_args()
    asyncio.run(main(args.out, args.chromium))
