"""JWT auth: the teams a token calls as -- their models and budgets, a team's private
deployments, a token naming several teams, and enforce_team_based_model_access."""

from admin_kit import MASTER, admin_post, bearer
from jwt_kit import error_of, jwt_config, listed, private_config, team_of_call


async def test_a_team_token_is_held_to_its_teams_models_and_budget(start, jwt_provider, chat):
    client = await start(jwt_config())
    narrow = await admin_post(client, "/team/new", {"models": ["mock-echo"]})
    error = await error_of(await client.post(
        "/v1/chat/completions", json=chat(),
        headers=bearer(jwt_provider.token(client_id=narrow["team_id"]))), 401)
    assert error["type"] == "team_model_access_denied"
    spent = await admin_post(client, "/team/new", {"max_budget": 0})
    error = await error_of(await client.post(
        "/v1/chat/completions", json=chat(),
        headers=bearer(jwt_provider.token(client_id=spent["team_id"]))), 400)
    assert "Budget has been exceeded" in error["message"]


async def test_a_teams_private_deployment_serves_its_own_tokens_and_keys_and_the_admin(
        start, jwt_provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream))
    keys, tokens = {}, {}
    for team in ("t-a", "t-b"):
        await admin_post(client, "/team/new", {"team_id": team})
        keys[team] = (await admin_post(client, "/key/generate", {"team_id": team}))["key"]
        tokens[team] = jwt_provider.token(client_id=team, sub=f"user-{team}")

    async def call(credential):
        return await client.post("/v1/chat/completions", headers=bearer(credential),
                                 json=chat(model="b-private"))

    # Team A's token is told what team A's key is told: no such model.
    refused_key = await error_of(await call(keys["t-a"]), 400)
    refused_token = await error_of(await call(tokens["t-a"]), 400)
    assert refused_token == refused_key
    assert "b-private" in refused_token["message"]
    assert "b-private" not in await listed(client, bearer(tokens["t-a"]))
    resp = await client.get("/model/info", headers=bearer(tokens["t-a"]))
    assert "b-private" not in [d["model_name"] for d in (await resp.json())["data"]]
    assert not any(body["model"] == "b-private" for body in fake_upstream.received)

    # Team B's token and key, and the master key, reach it.
    assert await team_of_call(client, await call(tokens["t-b"])) == "t-b"
    assert await team_of_call(client, await call(keys["t-b"])) == "t-b"
    assert (await call(MASTER)).status == 200
    assert "b-private" in await listed(client, bearer(tokens["t-b"]))
    assert "b-private" in await listed(client, bearer(MASTER))
    # The shared model stays open to both teams.
    resp = await client.post("/v1/chat/completions", headers=bearer(tokens["t-a"]),
                             json=chat())
    assert await team_of_call(client, resp) == "t-a"


async def test_a_token_naming_several_teams_calls_as_the_first_allowed_the_model(
        start, jwt_provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream, team_id_jwt_field=None,
                                        team_ids_jwt_field="groups"))
    # t-a may use every model, yet b-private is t-b's alone; t-c lists gpt-4o only.
    await admin_post(client, "/team/new", {"team_id": "t-a"})
    await admin_post(client, "/team/new", {"team_id": "t-b"})
    await admin_post(client, "/team/new", {"team_id": "t-c", "models": ["gpt-4o"]})

    async def team_calling(groups, model):
        return await team_of_call(client, await client.post(
            "/v1/chat/completions", headers=bearer(jwt_provider.token(groups=groups)),
            json=chat(model=model)))

    assert await team_calling(["t-a", "t-b"], "gpt-4o") == "t-a"
    assert await team_calling(["t-a", "t-b"], "b-private") == "t-b"
    # A team whose list leaves the model out is passed over, as is a team the gateway does
    # not know.
    assert await team_calling(["t-c", "t-b"], "b-private") == "t-b"
    assert await team_calling(["t-none", "t-c", "t-b"], "gpt-4o") == "t-c"
    # Listing models (no model asked for) is done as the first team known.
    def groups(*teams):
        return bearer(jwt_provider.token(groups=list(teams)))

    assert "b-private" not in await listed(client, groups("t-a", "t-b"))
    assert "b-private" in await listed(client, groups("t-none", "t-b"))
    # A call naming several models calls each as its own team.
    resp = await client.post("/v1/chat/completions",
                             headers=bearer(jwt_provider.token(groups=["t-c", "t-b"])),
                             json=chat(model="gpt-4o,b-private"))
    assert resp.status == 200, await resp.text()
    assert [reply["model"] for reply in await resp.json()] == ["gpt-4o", "b-private"]

    # No team of the token may use it: refused, naming the teams tried.
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(jwt_provider.token(groups=["t-c", "t-a"])),
        json=chat(model="b-private")), 400)
    assert "b-private" in error["message"]
    error = await error_of(await client.post(
        "/v1/chat/completions", headers=bearer(jwt_provider.token(groups=["t-c", "t-none"])),
        json=chat(model="mock-echo")), 403)
    assert error["message"] == ("No team has access to the requested model: mock-echo. "
                                "Checked teams=['t-c', 't-none']. Check `/models` to see all "
                                "available models.")
    assert error["type"] == "auth_error"


async def test_a_litellm_config_with_enforce_team_based_model_access_starts(
        start, jwt_provider, fake_upstream, chat):
    client = await start(private_config(fake_upstream, enforce_team_based_model_access=True))
    await admin_post(client, "/team/new", {"team_id": "t-a", "models": ["gpt-4o"]})
    token = jwt_provider.token(client_id="t-a", sub="user-t-a")
    resp = await client.post("/v1/chat/completions", headers=bearer(token), json=chat())
    assert resp.status == 200, await resp.text()
    resp = await client.post("/v1/chat/completions", headers=bearer(token),
                             json=chat(model="b-private"))
    assert "team not allowed to access model" in (await error_of(resp, 401))["message"]
