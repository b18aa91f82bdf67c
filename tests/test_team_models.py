"""Team-scoped models: ``/model/new`` with ``model_info.team_id``, by a proxy admin or the
team's admin, stores the model under an internal name, gives the team the public name (in its
``models`` and as an alias), and serves it to that team's keys alone -- listed under its public
name, invisible and uncallable for everyone else. ``/v1/models?team_id=`` is for the team's
members."""

import openai
import pytest
from gatehouse.app import GATEWAY

from admin_kit import ADMIN, MASTER, admin_get, admin_post, bearer, both_databases

CHAT = [{"role": "user", "content": "hello"}]
IN_DB = {"general_settings": {"store_model_in_db": True}}


def oai(client, key):
    return openai.AsyncOpenAI(api_key=key, base_url=str(client.make_url("/v1")), max_retries=0)


def team_model(fake_upstream, team_id, name="my-gpt"):
    return {"model_name": name, "model_info": {"team_id": team_id},
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": fake_upstream.url,
                               "api_key": "sk-team-upstream"}}


async def listed(client, key, **params):
    resp = await client.get("/v1/models", params=params, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["data"]]


@pytest.fixture
async def teams(start):
    """Teams t-a (admin alice) and t-b (admin bob), and a key for each admin in their team."""
    client = await start(IN_DB)
    keys = {}
    for team, admin in (("t-a", "alice"), ("t-b", "bob")):
        await admin_post(client, "/team/new", {"team_id": team, "members_with_roles": [
            {"user_id": admin, "role": "admin"}]})
        keys[team] = (await admin_post(client, "/key/generate",
                                       {"user_id": admin, "team_id": team}))["key"]
    return client, keys


@both_databases
async def test_a_team_admin_adds_a_model_only_its_team_can_call(teams, fake_upstream):
    client, keys = teams
    resp = await client.post("/model/new", json=team_model(fake_upstream, "t-a"),
                             headers=bearer(keys["t-a"]))
    assert resp.status == 200, await resp.text()
    row = await resp.json()
    internal = row["model_name"]
    assert internal.startswith("model_name_t-a_") and internal != "model_name_t-a_"
    assert row["model_info"]["team_public_model_name"] == "my-gpt"
    team = (await admin_get(client, "/team/info", team_id="t-a"))["team_info"]
    assert team["models"] == ["all-proxy-models", "my-gpt"]
    assert team["model_aliases"] == {"my-gpt": internal}

    async with oai(client, keys["t-a"]) as api:
        raw = await api.chat.completions.with_raw_response.create(model="my-gpt",
                                                                  messages=CHAT)
        assert raw.headers["x-litellm-model-group"] == internal
    assert fake_upstream.last["model"] == "gpt-4o-mini"
    assert await listed(client, keys["t-a"]) == ["gpt-4o", "mock-echo", "my-gpt"]
    mine = (await (await client.get("/model/info", headers=bearer(keys["t-a"]))).json())["data"]
    assert internal in [d["model_name"] for d in mine]

    # Another team neither sees nor calls it, by either name.
    async with oai(client, keys["t-b"]) as api:
        for name in ("my-gpt", internal):
            with pytest.raises(openai.BadRequestError):
                await api.chat.completions.create(model=name, messages=CHAT)
    assert await listed(client, keys["t-b"]) == ["gpt-4o", "mock-echo"]
    theirs = (await (await client.get("/model/info", headers=bearer(keys["t-b"]))).json())
    assert internal not in [d["model_name"] for d in theirs["data"]]
    assert len(fake_upstream.received) == 1
    # An admin may call it by its internal name.
    async with oai(client, MASTER) as api:
        await api.chat.completions.create(model=internal, messages=CHAT)


@both_databases
async def test_only_the_teams_admins_manage_its_models(teams, fake_upstream):
    client, keys = teams
    resp = await client.post("/model/new", json=team_model(fake_upstream, "t-a"),
                             headers=bearer(keys["t-b"]))
    assert resp.status == 403
    assert "You can only make model calls if you are a PROXY_ADMIN or if you are a team " \
           "admin" in (await resp.json())["error"]["message"]
    # An unknown team is no different, to a non-admin.
    resp = await client.post("/model/new", json=team_model(fake_upstream, "t-none"),
                             headers=bearer(keys["t-b"]))
    assert resp.status == 403
    resp = await client.post("/model/new", json=team_model(fake_upstream, "t-none"),
                             headers=ADMIN)
    assert resp.status == 400

    row = await admin_post(client, "/model/new", team_model(fake_upstream, "t-a"))
    model_id = row["model_id"]
    for key in (keys["t-b"],):
        resp = await client.post("/model/delete", json={"id": model_id}, headers=bearer(key))
        assert resp.status == 403
        resp = await client.patch(f"/model/{model_id}/update",
                                  json={"model_info": {"team_id": "t-b"}}, headers=bearer(key))
        assert resp.status == 403
    # Its team admin may change it, but not move it to another team.
    resp = await client.patch(f"/model/{model_id}/update",
                              json={"model_info": {"team_id": "t-b", "tier": "paid"}},
                              headers=bearer(keys["t-a"]))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["model_info"]["team_id"] == "t-a"
    resp = await client.post("/model/delete", json={"id": model_id},
                             headers=bearer(keys["t-a"]))
    assert resp.status == 200, await resp.text()
    team = (await admin_get(client, "/team/info", team_id="t-a"))["team_info"]
    assert team["models"] == ["all-proxy-models"] and team["model_aliases"] == {}
    async with oai(client, keys["t-a"]) as api:
        with pytest.raises(openai.BadRequestError):
            await api.chat.completions.create(model="my-gpt", messages=CHAT)


async def test_listing_a_teams_models_is_for_its_members(teams):
    client, keys = teams
    await admin_post(client, "/team/update", {"team_id": "t-a", "models": ["mock-echo"]})
    # A member of the team through its user, whatever team the key is in.
    alice_elsewhere = (await admin_post(client, "/key/generate",
                                        {"user_id": "alice", "team_id": "t-b"}))["key"]
    assert await listed(client, keys["t-a"], team_id="t-a") == ["mock-echo"]
    assert await listed(client, alice_elsewhere, team_id="t-a") == ["mock-echo"]
    for team_id in ("t-a", "t-none"):
        resp = await client.get("/v1/models", params={"team_id": team_id},
                                headers=bearer(keys["t-b"]))
        assert resp.status == 403
        assert (await resp.json())["error"]["message"] == (
            f"{{'error': 'User=bob not authorized to access this team={team_id}'}}")
    resp = await client.get("/v1/models", params={"team_id": "t-none"}, headers=ADMIN)
    assert resp.status == 404


def with_private(fake_upstream, **settings):
    """gpt-4o for all, and b-private: a deployment of team t-b alone."""
    return {**({"general_settings": settings} if settings else {}), "model_list": [
        fake_upstream.model_entry("gpt-4o"), team_model(fake_upstream, "t-b", "b-private")]}


async def test_callers_with_no_key_are_not_of_the_team(start, fake_upstream):
    """A route made public is called by nobody in particular: a team's deployment stays
    hidden from it as from another team's key, while the gateway's own calls reach it."""
    client = await start(with_private(fake_upstream, public_routes=[
        "LiteLLMRoutes.public_routes", "/v1/chat/completions"]))
    async with oai(client, "no-key") as api:
        await api.chat.completions.create(model="gpt-4o", messages=CHAT)
        with pytest.raises(openai.BadRequestError) as refused:
            await api.chat.completions.create(model="b-private", messages=CHAT)
    assert "b-private" in refused.value.message
    assert [body["model"] for body in fake_upstream.received] == ["gpt-4o"]

    # A guardrail asking a model is the gateway itself.
    await client.app[GATEWAY].router.complete("b-private", {"messages": CHAT})
    assert [body["model"] for body in fake_upstream.received] == ["gpt-4o", "gpt-4o-mini"]


async def test_without_a_master_key_every_caller_reaches_every_teams_models(
        gateway, fake_upstream):
    client = await gateway(with_private(fake_upstream))
    async with oai(client, "anything") as api:
        await api.chat.completions.create(model="b-private", messages=CHAT)
        assert "b-private" in [m.id async for m in api.models.list()]
