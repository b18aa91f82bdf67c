"""The public model hub: groups made public in config or through /model_group/make_public
(kept in the database, so every gateway on it sees them), listed without a key at
/public/model_hub and on a page a phone can read."""

from admin_kit import ADMIN, admin_post, both_databases, bearer

PUBLIC = {"model_name": "gpt-4o-public", "params": {
    "model": "mock/echo", "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05},
    "model_info": {"max_input_tokens": 128000, "max_output_tokens": 16384,
                   "supports_vision": True, "supports_function_calling": True}}
PRIVATE = {"model_name": "internal-only", "params": {"model": "mock/echo"}}
CONFIG = {"model_list": [PUBLIC, PRIVATE], "litellm_settings": {
    "public_model_groups": ["gpt-4o-public"],
    "public_model_groups_links": {"Docs": "https://docs.example.com"}}}


async def test_config_public_groups_are_listed_without_a_key(start, monkeypatch):
    monkeypatch.setenv("DOCS_TITLE", "Acme AI")
    client = await start(CONFIG)
    resp = await client.get("/public/model_hub")
    assert resp.status == 200
    [group] = await resp.json()
    assert group["model_group"] == "gpt-4o-public" and group["is_public_model_group"] is True
    assert group["input_cost_per_token"] == 2.5e-06 and group["max_input_tokens"] == 128000
    assert group["supports_vision"] is True and group["providers"] == ["mock"]
    info = await (await client.get("/public/model_hub/info")).json()
    assert info["docs_title"] == "Acme AI" and info["custom_docs_description"] is None
    assert info["useful_links"] == {"Docs": "https://docs.example.com"}


async def test_make_public_needs_models_in_the_database(start):
    client = await start(CONFIG)
    resp = await client.post("/model_group/make_public", headers=ADMIN,
                             json={"model_groups": ["internal-only"]})
    assert resp.status == 500
    assert "STORE_MODEL_IN_DB" in (await resp.json())["error"]["message"]


@both_databases
async def test_make_public_replaces_the_list_for_every_caller(start):
    client = await start({**CONFIG, "general_settings": {"store_model_in_db": True}})
    body = await admin_post(client, "/model_group/make_public",
                            {"model_groups": ["internal-only"]})
    assert body == {"message": "Successfully updated public model groups",
                    "public_model_groups": ["internal-only"], "updated_by": "default_user_id"}
    listed = await (await client.get("/public/model_hub")).json()
    assert [g["model_group"] for g in listed] == ["internal-only"]
    await admin_post(client, "/model_hub/update_useful_links",
                     {"useful_links": {"Status": "https://status.example.com"}})
    info = await (await client.get("/public/model_hub/info")).json()
    assert info["useful_links"] == {"Status": "https://status.example.com"}
    unknown = await client.post("/model_group/make_public", headers=ADMIN,
                                json={"model_groups": ["nope"]})
    assert unknown.status == 400


async def test_only_admins_make_groups_public(start):
    client = await start({**CONFIG, "general_settings": {"store_model_in_db": True}})
    key = (await admin_post(client, "/key/generate", {}))["key"]
    resp = await client.post("/model_group/make_public", headers=bearer(key),
                             json={"model_groups": ["internal-only"]})
    # LiteLLM's own refusal, not the generic one of admin routes.
    assert resp.status == 403
    assert (await resp.json())["error"] == {
        "message": "{'error': 'Only proxy admins can update public model groups. Your "
                   "role=unknown'}", "type": "auth_error", "param": "None", "code": "403"}
    links = await client.post("/model_hub/update_useful_links", headers=bearer(key),
                              json={"useful_links": {"Docs": "https://evil.example.com"}})
    assert links.status == 403
    assert "Only proxy admins can update useful links" in \
        (await links.json())["error"]["message"]
    assert [g["model_group"] for g in await (await client.get("/public/model_hub")).json()] \
        == ["gpt-4o-public"]
    assert (await client.post("/model_group/make_public",
                              json={"model_groups": []})).status == 401


async def test_enable_public_model_hub_makes_every_group_public(start):
    """LiteLLM's older switch: the whole hub is public unless groups are chosen."""
    client = await start({"model_list": [PUBLIC, PRIVATE], "general_settings": {
        "enable_public_model_hub": True, "store_model_in_db": True}})
    listed = await (await client.get("/public/model_hub")).json()
    assert sorted(g["model_group"] for g in listed) == ["gpt-4o-public", "internal-only"]
    # A choice made through the API narrows it, even to nothing.
    await admin_post(client, "/model_group/make_public", {"model_groups": []})
    assert await (await client.get("/public/model_hub")).json() == []


async def test_chosen_groups_win_over_enable_public_model_hub(start):
    client = await start({**CONFIG, "general_settings": {"enable_public_model_hub": True}})
    listed = await (await client.get("/public/model_hub")).json()
    assert [g["model_group"] for g in listed] == ["gpt-4o-public"]


async def test_the_hub_page_on_a_phone(start, browser, tmp_path):
    client = await start(CONFIG)
    base = str(client.make_url("/"))
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(base + "ui/model_hub_table")
    await page.screenshot(path=tmp_path / "model-hub.png", full_page=True)
    cards = page.locator("article.model")
    assert await cards.count() == 1  # the private model is not shown
    card = cards.first
    assert await card.locator("h2").inner_text() == "gpt-4o-public"
    assert await card.locator(".input-price").inner_text() == "$2.50"
    assert await card.locator(".output-price").inner_text() == "$10.00"
    assert await card.locator(".context").inner_text() == "128,000 tokens"
    assert "vision" in await card.locator(".caps").inner_text()
    # Readable without zooming or scrolling sideways.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    assert await page.get_by_role("link", name="Docs").get_attribute("href") == \
        "https://docs.example.com"
    assert all(url.startswith(base) for url in requested), requested
