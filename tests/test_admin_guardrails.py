"""The guardrail routes: guardrails added, replaced and deleted through the API are kept in the
database (credentials encrypted, shown masked) and served by every gateway sharing it within
seconds; the lists show what is served; apply_guardrail runs one guardrail on a text."""

import asyncio

import psycopg
import pytest

from admin_kit import ADMIN, MASTER, admin_get, admin_post, bearer
from doubles import PLUGINS, guardrail
from gatehouse.app import GATEWAY

SECRET = "vk-guardrail-vendor-secret-0123"


def stored(name, **params):
    return {"guardrail": {"guardrail_name": name, "guardrail_info": {"owner": "security"},
                          "litellm_params": {"guardrail": "probe", "mode": "pre_call",
                                             "api_key": SECRET, **params}}}


async def chat_with(client, text, *names):
    return await client.post("/v1/chat/completions", headers=ADMIN, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": text}],
        "guardrails": list(names)})


async def until(check, timeout=10):
    """Until ``check()`` holds: another gateway follows a change within its poll interval."""
    async def wait():
        while not await check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), timeout)


async def test_two_gateways_on_one_postgres_serve_each_others_guardrails(
        gateway, postgres_url, redis_url, redis_namespace):
    config = {"general_settings": {"master_key": MASTER, "database_url": postgres_url,
                                   "redis_url": redis_url, "redis_namespace": redis_namespace}}
    one = await gateway(config, plugins=PLUGINS)
    two = await gateway(config, plugins=PLUGINS)
    created = await admin_post(one, "/guardrails", stored("shared", block_word="plan"))
    guardrail_id = created["guardrail_id"]
    # Served here at once.
    assert (await chat_with(one, "my plan", "shared")).status == 400

    async def two_blocks(word):
        return (await chat_with(two, f"my {word}", "shared")).status == 400

    await until(lambda: two_blocks("plan"))
    resp = await two.put(f"/guardrails/{guardrail_id}", headers=ADMIN,
                         json=stored("shared", block_word="budget"))
    assert resp.status == 200, await resp.text()
    await until(lambda: two_blocks("budget"))

    async def one_follows():
        return ((await chat_with(one, "my budget", "shared")).status == 400
                and (await chat_with(one, "my plan", "shared")).status == 200)

    await until(one_follows)
    resp = await one.delete(f"/guardrails/{guardrail_id}", headers=ADMIN)
    assert resp.status == 200

    async def gone_from_two():
        resp = await chat_with(two, "hello", "shared")
        return resp.status == 400 and "Unknown guardrail" in (await resp.json())["error"][
            "message"]

    await until(gone_from_two)
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT count(*) FROM gatehouse_guardrails").fetchone() == (0,)
    assert not two.app[GATEWAY].live_guardrails.current.stored


async def test_a_stored_guardrail_is_sealed_at_rest_and_listed_masked(start):
    client = await start({"guardrails": [guardrail("from-config", default_on=True)]},
                         plugins=PLUGINS)
    created = await admin_post(client, "/guardrails", stored("from-db", block_word="x"))
    assert created["litellm_params"]["api_key"] == "vk-g****"
    assert created["guardrail_info"] == {"owner": "security"}
    store = client.app[GATEWAY].store
    async with store.transaction() as tx:
        [row] = await tx.fetchall("SELECT litellm_params FROM gatehouse_guardrails")
    assert SECRET not in row["litellm_params"] and "probe" not in row["litellm_params"]

    listed = await admin_get(client, "/v2/guardrails/list")
    assert [(g["guardrail_name"], g["guardrail_definition_location"])
            for g in listed["guardrails"]] == [("from-config", "config"), ("from-db", "db")]
    from_db = listed["guardrails"][1]
    assert from_db["guardrail_id"] == created["guardrail_id"]
    assert from_db["litellm_params"] == {"guardrail": "probe", "mode": ["pre_call"],
                                         "default_on": False, "api_key": "vk-g****",
                                         "block_word": "x"}
    assert from_db["created_at"] and from_db["updated_at"]
    v1 = await admin_get(client, "/guardrails/list")
    assert [g["guardrail_name"] for g in v1["guardrails"]] == ["from-config", "from-db"]
    for path in ("/guardrails/list", "/v2/guardrails/list"):
        assert SECRET not in await (await client.get(path, headers=ADMIN)).text()


async def test_every_change_leaves_an_audit_row_without_the_key(start):
    client = await start({"litellm_settings": {"store_audit_logs": True}}, plugins=PLUGINS)
    created = await admin_post(client, "/guardrails", stored("audited"),
                               headers={"litellm-changed-by": "ops-bot"})
    guardrail_id = created["guardrail_id"]
    assert (await client.put(f"/guardrails/{guardrail_id}", headers=ADMIN,
                             json=stored("audited", block_word="z"))).status == 200
    assert (await client.delete(f"/guardrails/{guardrail_id}", headers=ADMIN)).status == 200
    resp = await client.get("/audit/logs", params={"object_id": guardrail_id}, headers=ADMIN)
    assert SECRET not in await resp.text()
    rows = {r["action"]: r for r in await resp.json()}
    assert set(rows) == {"created", "updated", "deleted"}
    assert {r["table_name"] for r in rows.values()} == {"LiteLLM_GuardrailsTable"}
    assert rows["created"]["changed_by"] == "ops-bot"
    assert rows["updated"]["updated_values"]["litellm_params"]["block_word"] == "z"
    assert rows["deleted"]["before_value"]["guardrail_name"] == "audited"


async def test_bad_changes_are_refused_with_the_reason(start):
    client = await start({"guardrails": [guardrail("taken")]}, plugins=PLUGINS)
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post("/guardrails", headers=bearer(key["key"]), json=stored("mine"))
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == \
        "Admin access required to manage guardrails"
    for body, words in (
            (stored("taken"), "a guardrail named 'taken' already exists"),
            ({"guardrail": {"guardrail_name": "odd", "litellm_params": {"guardrail": "nope"}}},
             "unknown guardrail type 'nope'"),
            (stored("typo", block_wrod="x"), "block_wrod"),
            ({"guardrail": {"guardrail_name": "local", "litellm_params": {
                "guardrail": "os:path"}}}, "only be named in the config file")):
        resp = await client.post("/guardrails", headers=ADMIN, json=body)
        assert resp.status == 400, await resp.text()
        assert words in (await resp.json())["error"]["message"]
        assert SECRET not in await resp.text()
    resp = await client.post("/guardrails", headers=ADMIN, json={"guardrail": {}})
    assert resp.status == 422
    for method in ("put", "delete"):
        resp = await getattr(client, method)("/guardrails/no-such-id", headers=ADMIN,
                                             json=stored("x"))
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == \
            "Guardrail with ID no-such-id not found"
    assert (await admin_get(client, "/v2/guardrails/list"))["guardrails"][0][
        "guardrail_name"] == "taken"


async def test_without_a_database_v2_list_and_changes_say_so(gateway):
    client = await gateway({"guardrails": [guardrail("a")]}, plugins=PLUGINS)
    resp = await client.get("/v2/guardrails/list")
    assert resp.status == 500
    assert (await resp.json())["error"]["message"] == "Prisma client not initialized"
    assert (await client.get("/guardrails/list")).status == 200


@pytest.mark.parametrize("path", ["/guardrails/apply_guardrail", "/apply_guardrail"])
async def test_apply_guardrail_blocks_masks_or_passes_a_text(gateway, fake_upstream, path):
    client = await gateway({"guardrails": [
        guardrail("blocker", block_word="plan"),
        {"guardrail_name": "secrets", "litellm_params": {"guardrail": "hide-secrets"}},
        guardrail("replies", mode="post_call", append=" [checked]")]},
        plugins=PLUGINS, load=["gatehouse-secrets"])
    resp = await client.post(path, json={"guardrail_name": "blocker", "text": "the plan",
                                         "language": "en"})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == \
        'Probe blocker saw plan: {"probe_response":{"word":"plan"}}'
    resp = await client.post(path, json={"guardrail_name": "blocker", "text": "hello"})
    assert await resp.json() == {"response_text": "hello"}
    resp = await client.post(path, json={"guardrail_name": "secrets",
                                         "text": "API_KEY = 'sk_1234567890abcdef'"})
    assert await resp.json() == {"response_text": "API_KEY = '[REDACTED]'"}
    resp = await client.post(path, json={"guardrail_name": "replies", "text": "an answer"})
    assert await resp.json() == {"response_text": "an answer [checked]"}
    resp = await client.post(path, json={"guardrail_name": "nobody", "text": "x"})
    assert resp.status == 404
    assert (await resp.json())["error"]["message"] == (
        "Guardrail 'nobody' not found. Please ensure the guardrail is configured in your "
        "LiteLLM proxy.")
    assert fake_upstream.received == []


async def test_apply_guardrail_shows_what_a_monitor_only_guardrail_would_do(gateway):
    # enforce: false spares calls, not the playground: trying one is how to see what it would do.
    client = await gateway({"guardrails": [
        guardrail("watcher", block_word="plan", enforce=False),
        {"guardrail_name": "secrets-watch",
         "litellm_params": {"guardrail": "hide-secrets", "enforce": False}}]},
        plugins=PLUGINS, load=["gatehouse-secrets"])
    resp = await client.post("/guardrails/apply_guardrail",
                             json={"guardrail_name": "watcher", "text": "the plan"})
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith("Probe watcher saw plan")
    resp = await client.post("/guardrails/apply_guardrail", json={
        "guardrail_name": "secrets-watch", "text": "API_KEY = 'sk_1234567890abcdef'"})
    assert await resp.json() == {"response_text": "API_KEY = '[REDACTED]'"}


async def test_a_guardrail_edited_as_listed_keeps_its_masked_secret(start):
    """A client (the admin UI) edits what the list shows: a credential sent back masked keeps
    its stored value rather than becoming the mask; a new value replaces it."""
    client = await start(plugins=PLUGINS)
    created = await admin_post(client, "/guardrails", stored("edited", block_word="x"))
    [listed] = (await admin_get(client, "/v2/guardrails/list"))["guardrails"]
    params = {**listed["litellm_params"], "block_word": "y", "access_token": "at-0123456789ab"}
    resp = await client.put(f"/guardrails/{created['guardrail_id']}", headers=ADMIN, json={
        "guardrail": {"guardrail_name": "edited", "litellm_params": params}})
    assert resp.status == 200, await resp.text()
    served = client.app[GATEWAY].live_guardrails.current.by_name["edited"].params
    assert served.api_key.get_secret_value() == SECRET
    assert served.block_word == "y"
    assert served.access_token == "at-0123456789ab"


async def test_a_password_in_a_guardrails_url_is_listed_masked_and_kept_on_edit(start):
    """Any key may read /guardrails/list: a vendor URL's user and password are masked there as
    an api_key is, and a client editing what it read keeps the stored URL."""
    base = "https://svc:url-password-0123@vendor.example/v1"
    client = await start({"guardrails": [guardrail("from-config", api_base=base)]},
                         plugins=PLUGINS)
    created = await admin_post(client, "/guardrails", stored("from-db", api_base=base))
    assert "url-password-0123" not in str(created)
    for path in ("/guardrails/list", "/v2/guardrails/list"):
        text = await (await client.get(path, headers=ADMIN)).text()
        assert "url-password-0123" not in text and "vendor.example/v1" in text, path
    listed = {g["guardrail_name"]: g for g in (
        await admin_get(client, "/v2/guardrails/list"))["guardrails"]}
    params = {**listed["from-db"]["litellm_params"], "block_word": "y"}
    resp = await client.put(f"/guardrails/{created['guardrail_id']}", headers=ADMIN, json={
        "guardrail": {"guardrail_name": "from-db", "litellm_params": params}})
    assert resp.status == 200, await resp.text()
    served = client.app[GATEWAY].live_guardrails.current.by_name["from-db"].params
    assert (served.api_base, served.block_word) == (base, "y")
