"""The Models page: each deployment with its prices per million tokens, limits, context window
and health, its upstream key never on the page; with store_model_in_db a model added in the
browser is served to the next call, its price edited and the model deleted -- without it, the
page says models come from the config file and offers no buttons."""

from admin_kit import ADMIN
from ui_kit import PHONE, table_rows

UPSTREAM_KEY = "sk-new-upstream-5e8c1a7d3b9f"


async def rows(page):
    return await table_rows(page, "#model-table")


async def health_of(page, name):
    cell = page.locator("#model-table tbody tr", has_text=name).locator(".health")
    await cell.locator(".badge", has_text="ealthy").wait_for()
    return await cell.inner_text()


def key_of_last_call(fake_upstream):
    """The upstream key the gateway sent with the last call of the test (not a health
    probe)."""
    calls = [headers for body, headers in zip(fake_upstream.received, fake_upstream.headers)
             if body["messages"][0]["content"] == "hi"]
    return calls[-1]["Authorization"]


async def chat(gateway, model):
    resp = await gateway.client.post("/v1/chat/completions", headers=ADMIN, json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]})
    return resp.status


async def test_config_models_show_prices_limits_and_health_and_no_buttons(ui, fake_upstream):
    entry = fake_upstream.model_entry("gpt-4o", input_cost_per_token=2.5e-6,
                                      output_cost_per_token=1e-5, rpm=60, tpm=100000)
    gateway = await ui({"model_list": [{**entry, "model_info": {"max_input_tokens": 128000}}]})
    page = await gateway.login()
    await gateway.open(page, "models")
    model = (await rows(page))["gpt-4o"]
    assert (model["Input $/1M"], model["Output $/1M"], model["RPM"], model["TPM"],
            model["Context"]) == ("$2.50", "$10.00", "60", "100,000", "128,000")
    assert "config file" in model["Model"]
    assert await health_of(page, "gpt-4o") == "healthy"
    assert "store_model_in_db: true" in await page.locator("#models-from-config").inner_text()
    assert await page.get_by_role("button", name="Add model").count() == 0
    assert "sk-fake-upstream-key" not in await page.content()
    await gateway.shot(page, "models")

    phone = await gateway.login(viewport=PHONE)
    await gateway.open(phone, "models")
    await rows(phone)
    assert await phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


async def test_a_model_added_in_the_browser_is_served_edited_and_deleted(ui, fake_upstream):
    gateway = await ui({"general_settings": {"store_model_in_db": True}})
    page = await gateway.login()
    await gateway.open(page, "models")
    assert await chat(gateway, "my-model") == 400

    await page.get_by_role("button", name="Add model").click()
    dialog = page.locator("#model-edit")
    await dialog.get_by_label("Model name").fill("my-model")
    await dialog.get_by_label("Upstream model").fill("openai/my-model")
    await dialog.get_by_label("API base").fill(fake_upstream.url)
    await dialog.get_by_label("API key").fill(UPSTREAM_KEY)
    await dialog.get_by_label("Input price ($ per 1M tokens)").fill("1")
    await dialog.get_by_label("Output price ($ per 1M tokens)").fill("2")
    await dialog.get_by_label("Context window (tokens)").fill("32000")
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    model = (await rows(page))["my-model"]
    assert (model["Input $/1M"], model["Output $/1M"], model["Context"]) == (
        "$1.00", "$2.00", "32,000")
    assert "database" in model["Model"]
    assert await health_of(page, "my-model") == "healthy"

    assert await chat(gateway, "my-model") == 200
    assert key_of_last_call(fake_upstream) == f"Bearer {UPSTREAM_KEY}"

    await page.get_by_role("button", name="Edit my-model").click()
    assert await dialog.get_by_label("Output price ($ per 1M tokens)").input_value() == "2"
    # The key is never sent back to the page: the field starts empty and keeps the key.
    assert await dialog.get_by_label("API key").input_value() == ""
    await dialog.get_by_label("Input price ($ per 1M tokens)").fill("3")
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    assert (await rows(page))["my-model"]["Input $/1M"] == "$3.00"
    assert await chat(gateway, "my-model") == 200
    assert key_of_last_call(fake_upstream) == f"Bearer {UPSTREAM_KEY}"
    assert UPSTREAM_KEY not in await page.content()

    await page.get_by_role("button", name="Delete my-model").click()
    await page.locator("dialog.confirm").get_by_role("button", name="Delete").click()
    await page.get_by_text("Deleted my-model").wait_for()
    assert "my-model" not in await rows(page)
    assert await chat(gateway, "my-model") == 400


async def test_a_viewer_sees_no_model_buttons_and_the_api_refuses_it(ui):
    gateway = await ui({"general_settings": {"store_model_in_db": True}})
    page = await gateway.login_sso("vera", role="proxy_admin_viewer")
    await gateway.open(page, "models")
    assert "gpt-4o" in await rows(page)
    assert await page.get_by_role("button", name="Add model").count() == 0
    status = await page.evaluate("""gh.api("POST", "/model/new", {body: {model_name: "x",
        litellm_params: {model: "openai/x"}}}).then(() => 200, (error) => error.status)""")
    assert status == 403
