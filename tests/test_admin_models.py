"""The models API: models added, changed and deleted through ``/model/*`` are kept in the
database (credentials encrypted, never shown) and served at once; ``/model/info`` and
``/model_group/info`` show every served model to an admin and only its own to a key; two
gateways on one database serve each other's models within seconds."""

import asyncio

import openai
import pytest

from admin_kit import ADMIN, MASTER, admin_get, admin_post, bearer, both_databases
from gatehouse.testing import GATEWAY

CHAT = [{"role": "user", "content": "hello"}]
IN_DB = {"general_settings": {"store_model_in_db": True}}


def upstream_model(fake_upstream, name="stored", model="openai/gpt-4o-mini", **info):
    return {"model_name": name, "litellm_params": {
        "model": model, "api_base": fake_upstream.url, "api_key": "sk-stored-upstream-secret"},
        "model_info": info}


async def call(client, model, key=MASTER):
    async with openai.AsyncOpenAI(api_key=key, base_url=str(client.make_url("/v1")),
                                  max_retries=0) as api:
        return await api.chat.completions.create(model=model, messages=CHAT)


@both_databases
async def test_a_stored_model_is_served_at_once_and_until_deleted(start, fake_upstream):
    client = await start(IN_DB)
    row = await admin_post(client, "/model/new", upstream_model(fake_upstream))
    model_id = row["model_id"]
    assert row["model_name"] == "stored" and row["model_info"]["id"] == model_id
    # Stored encrypted: neither the key nor the base appears in the answer.
    assert "sk-stored-upstream-secret" not in str(row)
    assert row["litellm_params"]["model"] != "openai/gpt-4o-mini"
    await call(client, "stored")
    assert fake_upstream.last["model"] == "gpt-4o-mini"

    await admin_post(client, "/model/update", {"model_info": {"id": model_id},
                                               "litellm_params": {"model": "openai/gpt-4.1",
                                                                  "api_key": None}})
    await call(client, "stored")
    assert fake_upstream.last["model"] == "gpt-4.1"
    # A null in an update keeps the old value.
    assert fake_upstream.headers[-1]["Authorization"] == "Bearer sk-stored-upstream-secret"

    resp = await client.patch(f"/model/{model_id}/update", json={"model_name": "renamed"},
                              headers=ADMIN)
    assert resp.status == 200, await resp.text()
    await call(client, "renamed")

    assert await admin_post(client, "/model/delete", {"id": model_id}) == {
        "message": f"Model: {model_id} deleted successfully"}
    with pytest.raises(openai.BadRequestError):
        await call(client, "renamed")


async def test_model_info_masks_credentials_and_filters_by_key(start, fake_upstream):
    client = await start(IN_DB)
    model = upstream_model(fake_upstream, "extra", access_groups=["beta"])
    model["litellm_params"] |= {"headers": {"x-upstream-token": "hdr-0123456789abcdef-wxyz"},
                                "access_token": "tok-0123456789"}
    await admin_post(client, "/model/new", model)
    data = (await admin_get(client, "/model/info"))["data"]
    assert [d["model_name"] for d in data] == ["gpt-4o", "mock-echo", "extra"]
    stored = data[2]
    assert stored["model_info"]["db_model"] is True and data[0]["model_info"]["db_model"] is False
    assert "api_key" not in stored["litellm_params"]
    # LiteLLM's format: the first and last four around a star per character hidden; a value
    # too short for that to hide eight characters shows nothing.
    assert stored["litellm_params"]["headers"] == {"x-upstream-token": f"hdr-{'*' * 17}wxyz"}
    assert stored["litellm_params"]["access_token"] == "****"
    assert stored["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert "secret" not in str(data)

    key = (await admin_post(client, "/key/generate", {"models": ["beta"]}))["key"]
    for path in ("/model/info", "/v1/model/info"):
        mine = (await (await client.get(path, headers=bearer(key))).json())["data"]
        assert [d["model_name"] for d in mine] == ["extra"]
    groups = (await (await client.get("/model_group/info", headers=bearer(key))).json())["data"]
    assert [(g["model_group"], g["providers"]) for g in groups] == [("extra", ["openai"])]
    # Access groups on stored models grant what they name.
    await call(client, "extra", key)

    resp = await client.get("/model/info", params={"litellm_model_id": "nope"}, headers=ADMIN)
    assert resp.status == 400
    assert await resp.json() == {"detail": "Model id = nope not found on litellm proxy"}


async def test_model_routes_answer_as_litellm_does(start, gateway, fake_upstream):
    off = await start()
    resp = await off.post("/model/new", json=upstream_model(fake_upstream), headers=ADMIN)
    assert resp.status == 500
    assert "STORE_MODEL_IN_DB" in (await resp.json())["error"]["message"]

    client = await start(IN_DB)
    config_id = client.app[GATEWAY].router.routes.groups["gpt-4o"][0].id
    cases = [
        ("/model/update", {"litellm_params": {}}, 400,
         "Authentication Error, model_info not provided"),
        ("/model/update", {"model_info": {"id": "nope"}}, 400,
         "Authentication Error, model not found"),
        ("/model/update", {"model_info": {"id": config_id}}, 400,
         "{'error': \"Can't edit model. Model in config. Store model in db via `/model/new`. "
         "to edit.\"}"),
        ("/model/delete", {"id": config_id}, 400,
         f"{{'error': 'Model with id={config_id} not found in db'}}"),
        ("/model/new", {"model_name": "x", "litellm_params": {"model": "nowhere/x"}}, 400,
         "unknown provider 'nowhere'"),
    ]
    for path, body, status, message in cases:
        resp = await client.post(path, json=body, headers=ADMIN)
        assert resp.status == status
        assert message in (await resp.json())["error"]["message"]
    resp = await client.patch("/model/nope/update", json={}, headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["error"]["type"] == "not_found_error"
    resp = await client.patch(f"/model/{config_id}/update", json={}, headers=ADMIN)
    assert (await resp.json())["error"]["type"] == "validation_error"
    key = (await admin_post(client, "/key/generate", {}))["key"]
    resp = await client.post("/model/new", json=upstream_model(fake_upstream),
                             headers=bearer(key))
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "{'error': 'User does not have permission to make this model call. Your role=unknown. "
        "You can only make model calls if you are a PROXY_ADMIN or if you are a team admin, "
        "by specifying a team_id in the model_info.'}")


async def test_a_changed_master_key_leaves_stored_models_unserved_not_the_gateway(
        gateway, fake_upstream, tmp_path, caplog):
    path = str(tmp_path / "db.sqlite")
    first = await gateway({"general_settings": {
        "master_key": MASTER, "database_path": path, "store_model_in_db": True}})
    await admin_post(first, "/model/new", upstream_model(fake_upstream))
    other = "sk-gh-another-master-key-0123456789"
    second = await gateway({"general_settings": {
        "master_key": other, "database_path": path, "store_model_in_db": True}})
    assert "stored" not in second.app[GATEWAY].router.model_names
    assert "cannot be decrypted" in caplog.text
    assert "sk-stored-upstream-secret" not in caplog.text


async def test_two_gateways_on_one_postgres_serve_each_others_models(
        gateway, fake_upstream, postgres_url, redis_url, redis_namespace):
    config = {"general_settings": {"master_key": MASTER, "database_url": postgres_url,
                                   "redis_url": redis_url, "redis_namespace": redis_namespace,
                                   "store_model_in_db": True}}
    one, two = await gateway(config), await gateway(config)
    row = await admin_post(one, "/model/new", upstream_model(fake_upstream, "shared"))

    async def served_by_two():
        while "shared" not in two.app[GATEWAY].router.model_names:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(served_by_two(), 10)
    await call(two, "shared")
    await admin_post(two, "/model/delete", {"id": row["model_id"]})

    async def gone_from_one():
        while "shared" in one.app[GATEWAY].router.model_names:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(gone_from_one(), 10)
    with pytest.raises(openai.BadRequestError):
        await call(one, "shared")


async def test_every_change_to_a_stored_model_leaves_an_audit_row_without_its_key(
        start, fake_upstream):
    client = await start({**IN_DB, "litellm_settings": {"store_audit_logs": True}})
    row = await admin_post(client, "/model/new", upstream_model(fake_upstream),
                           headers={"litellm-changed-by": "ops-bot"})
    model_id = row["model_id"]
    await admin_post(client, "/model/update", {"model_info": {"id": model_id},
                                               "litellm_params": {"model": "openai/gpt-4.1"}})
    await admin_post(client, "/model/delete", {"id": model_id})
    resp = await client.get("/audit/logs", params={"object_id": model_id}, headers=ADMIN)
    assert "sk-stored-upstream-secret" not in await resp.text()
    rows = {r["action"]: r for r in await resp.json()}
    assert set(rows) == {"created", "updated", "deleted"}
    assert {r["table_name"] for r in rows.values()} == {"LiteLLM_ProxyModelTable"}
    assert rows["created"]["changed_by"] == "ops-bot"
    assert rows["created"]["updated_values"]["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert rows["updated"]["before_value"]["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert rows["updated"]["updated_values"]["litellm_params"]["model"] == "openai/gpt-4.1"
    assert rows["deleted"]["before_value"]["model_name"] == "stored"
