"""Driving the admin UI in Debian's chromium: a gateway with the admin kit's master key, a
password or SSO login through the login page, screenshots under the test's tmp dir, and every
script error on a page failing the test."""

import asyncio
import re
from pathlib import Path

from playwright.async_api import expect

from admin_kit import MASTER, admin_post

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Ui:
    def __init__(self, client, browser, provider, shots: Path):
        self.client = client  # the gateway, for admin API calls made by the test itself
        self.base = str(client.make_url("/")).rstrip("/")
        self._browser = browser
        self._provider = provider
        self._shots = shots
        self.errors: list[str] = []

    async def _page(self, viewport):
        context = await self._browser.new_context(viewport=viewport,
                                                  is_mobile=viewport["width"] < 600)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        # A refused request is the browser's console error too; the tests check statuses
        # themselves, so only what the scripts themselves report counts here.
        page.on("console", lambda message: message.type == "error" and not message.text
                .startswith("Failed to load resource") and self.errors.append(
                    f"{page.url}: {message.text}"))
        return page

    async def login(self, viewport=DESKTOP):
        """A page logged in as the proxy admin with UI_USERNAME/UI_PASSWORD (the master key
        when UI_PASSWORD is unset)."""
        page = await self._page(viewport)
        await page.goto(f"{self.base}/login")
        await page.get_by_label("Username").fill("admin")
        await page.get_by_label("Password").fill(MASTER)
        await page.get_by_role("button", name="Log in").click()
        await page.wait_for_url(f"{self.base}/ui/**")
        return page

    async def login_sso(self, user_id: str, role: str | None = None, viewport=DESKTOP):
        """A page logged in through the test's OIDC provider as ``user_id``, made with ``role``
        by the admin API first when given."""
        if role is not None:
            await admin_post(self.client, "/user/new", {"user_id": user_id, "user_role": role,
                                                        "user_email": f"{user_id}@corp.io"})
        self._provider.user = {"preferred_username": user_id, "email": f"{user_id}@corp.io",
                               "sub": user_id}
        page = await self._page(viewport)
        await page.goto(f"{self.base}/login")
        await page.get_by_role("link", name="Log in with SSO").click()
        await page.wait_for_url(f"{self.base}/ui/**")
        return page

    async def open(self, page, name: str):
        """Go to a page and wait until what it shows has loaded (a table, the usage totals and
        chart, a detail view are aria-busy while their answer is on the way)."""
        await page.goto(f"{self.base}/ui/{name}")
        await page.wait_for_load_state("networkidle")
        await expect(page.locator("[aria-busy=true]")).to_have_count(0)

    async def copied_key(self, page) -> str:
        """The new key the Keys page's shown-once dialog holds, as its copy button puts it on
        the clipboard."""
        dialog = page.locator("#key-secret")
        await dialog.wait_for()
        assert "You will not see it again" in await dialog.inner_text()
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                             origin=self.base)
        await dialog.get_by_role("button", name="Copy key").click()
        await dialog.get_by_role("button", name="Copied").wait_for()
        secret = await page.evaluate("navigator.clipboard.readText()")
        assert secret.startswith("sk-")
        assert secret == await dialog.locator("code").inner_text()
        return secret

    async def shot(self, page, name: str) -> Path:
        path = self._shots / f"{name}.png"
        await page.screenshot(path=path, full_page=True)
        return path


async def gone_from_page(page, text: str):
    """Wait until ``text`` is nowhere in the page: a dialog's close event, which clears what it
    showed, comes a task after the dialog is hidden."""
    await page.wait_for_function("text => !document.documentElement.outerHTML.includes(text)",
                                 arg=text)


async def rows_are(rows, *texts):
    """Wait until ``rows`` (a locator of table rows) are as many as ``texts``, each holding its
    text (None: any). It is one check of one state: a list an earlier action left, or its one
    "Loading…" row, cannot pass for the list a filter asked for."""
    await expect(rows).to_have_text([re.compile(re.escape(text) if text else ".")
                                     for text in texts])


# Notes the URL of every answer a page's script has read: once it is noted, what the script did
# with the answer (gh.api reads every one with Response.text) has run too, in the same task.
NOTE_READS = """(() => {
  const read = Response.prototype.text;
  window.answersRead = [];
  Response.prototype.text = function () {
    return read.call(this).then((body) => { window.answersRead.push(this.url); return body; });
  };
})()"""


async def hold_answer(page, part: str):
    """Hold back the page's next request whose URL holds ``part``. Returns ``release()``, which
    lets it through and returns once the page's script has read its answer. The page must have
    been opened after ``page.add_init_script(NOTE_READS)``."""
    held = asyncio.get_running_loop().create_future()

    async def route(request_route):
        if part in request_route.request.url and not held.done():
            held.set_result(request_route)
        else:
            await request_route.continue_()
    await page.route("**/*", route)

    async def release():
        request_route = await held
        read = "part => window.answersRead.filter((url) => url.includes(part)).length"
        before = await page.evaluate(read, part)
        await request_route.continue_()
        await page.unroute("**/*", route)
        await page.wait_for_function(f"part => ({read})(part) > {before}", arg=part)
    return release


async def table_rows(page, table: str) -> dict[str, dict[str, str]]:
    """A loaded table as the user sees it: the first word of each row's first cell (its name;
    buttons may follow it) -> {column heading: cell text}."""
    body = page.locator(f"{table} tbody")
    await expect(body).not_to_contain_text("Loading…")
    # A failed load shows its reason in the table: say it rather than time out.
    assert await body.locator("td.empty").count() == 0, await body.inner_text()
    headers = await page.locator(f"{table} thead th").all_inner_texts()
    found = {}
    for row in await body.locator("tr").all():
        cells = await row.locator("td").all_inner_texts()
        found[cells[0].split()[0]] = dict(zip(headers, cells))
    return found
