"""Who a call is for and who it belongs to bind it: an end user's block and budget apply
whatever key is used, and a key's user, the user's team membership and the team's
organization each bound the call with their budget and models."""

import re
import time

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer, both_databases
from openai import AsyncOpenAI, BadRequestError

from gatehouse.app import GATEWAY
from gatehouse.config import ConfigError, config_from_dict
from test_admin_spend_audit import status_becomes


async def priced(start, fake_upstream, **config):
    """A gateway whose one model costs 0.01 a prompt token: one call of "hello" spends a
    budget of 0.01."""
    return await start({"model_list": [
        fake_upstream.model_entry("gpt-4o", input_cost_per_token=0.01),
        {"model_name": "mock-echo", "params": {"model": "mock/echo"}}], **config})


async def settle(client):
    await client.app[GATEWAY].call_log.drain()
    await client.app[GATEWAY].accounting.flush()


@both_databases
async def test_an_end_users_budget_binds_every_key_and_spend_is_recorded(start, fake_upstream,
                                                                       chat):
    client = await priced(start, fake_upstream)
    customer = await admin_post(client, "/customer/new", {"user_id": "cust-1",
                                                          "max_budget": 0.01})
    assert customer["litellm_budget_table"]["max_budget"] == 0.01
    keys = [bearer((await admin_post(client, "/key/generate", {}))["key"]) for _ in range(2)]

    resp = await client.post("/v1/chat/completions", json=chat(user="cust-1"), headers=keys[0])
    assert resp.status == 200
    await settle(client)
    # Another key, same end user: the end user's budget is spent.
    resp = await client.post("/v1/chat/completions", json=chat(user="cust-1"), headers=keys[1])
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["type"], error["code"]) == ("budget_exceeded", "400")
    assert re.fullmatch(r"Budget has been exceeded! Current cost: [\d.]+, Max budget: 0\.01",
                        error["message"])
    # Someone else is not bound by it.
    resp = await client.post("/v1/chat/completions", json=chat(user="cust-2"), headers=keys[1])
    assert resp.status == 200
    await settle(client)

    info = await client.get("/customer/info", params={"end_user_id": "cust-1"}, headers=ADMIN)
    spent = (await info.json())["spend"]
    assert spent > 0.01
    # An end user first seen on a call gets a row of their own with what they spent.
    info = await client.get("/end_user/info", params={"end_user_id": "cust-2"}, headers=ADMIN)
    assert (await info.json())["spend"] == pytest.approx(spent)
    assert (await info.json())["blocked"] is False

    # Raising the budget lets them in again, on the next call.
    await admin_post(client, "/customer/update", {"user_id": "cust-1", "max_budget": 1.0})
    resp = await client.post("/v1/chat/completions", json=chat(user="cust-1"), headers=keys[0])
    assert resp.status == 200


async def test_the_official_client_names_the_end_user_and_sees_the_block(start, fake_upstream,
                                                                        chat):
    client = await start()
    secret = (await admin_post(client, "/key/generate", {}))["key"]
    await admin_post(client, "/end_user/block", {"user_ids": ["blocked-7"]})
    openai = AsyncOpenAI(api_key=secret, base_url=str(client.make_url("/v1")), max_retries=0)
    with pytest.raises(BadRequestError) as refused:
        await openai.chat.completions.create(model="gpt-4o", user="blocked-7",
                                             messages=[{"role": "user", "content": "hi"}])
    assert "User blocked from making LLM API Calls. User=blocked-7" in str(refused.value)
    reply = await openai.chat.completions.create(model="gpt-4o", user="free-7",
                                                 messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    await openai.close()


@pytest.mark.parametrize("body", [
    {"litellm_metadata": {"user": "meta-user"}},
    {"metadata": {"user_id": "meta-user"}},
])
async def test_the_end_user_is_also_read_from_metadata(start, chat, body):
    client = await start()
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    await admin_post(client, "/customer/block", {"user_ids": ["meta-user"]})
    resp = await status_becomes(400, lambda: client.post(
        "/v1/chat/completions", json=chat(**body), headers=key))
    assert "User=meta-user" in (await resp.json())["error"]["message"]


async def test_a_customer_created_blocked_is_refused_and_unblock_lifts_it(start, chat):
    client = await start()
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    await admin_post(client, "/customer/new", {"user_id": "c-blocked", "blocked": True})
    resp = await client.post("/v1/chat/completions", json=chat(user="c-blocked"), headers=key)
    assert resp.status == 400
    unblocked = await admin_post(client, "/customer/unblock", {"user_ids": ["c-blocked"]})
    assert unblocked["unblocked_users"] == ["c-blocked"]
    resp = await client.post("/v1/chat/completions", json=chat(user="c-blocked"), headers=key)
    assert resp.status == 200


async def personal_and_team_key(client, user_id, max_budget):
    """A user with a budget, their personal key, and their key in a team of their own."""
    made = await admin_post(client, "/user/new", {"user_id": user_id, "max_budget": max_budget})
    await admin_post(client, "/team/new", {"team_id": f"t-{user_id}"})
    team_key = (await admin_post(client, "/key/generate", {
        "user_id": user_id, "team_id": f"t-{user_id}"}))["key"]
    return bearer(made["key"]), bearer(team_key)


@both_databases
async def test_a_users_budget_binds_their_personal_keys_only(start, fake_upstream, chat):
    client = await priced(start, fake_upstream)
    personal, team_key = await personal_and_team_key(client, "spender", 0.01)
    assert (await client.post("/v1/chat/completions", json=chat(), headers=personal)).status \
        == 200
    await settle(client)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=personal)
    assert resp.status == 400
    assert re.fullmatch(r"ExceededBudget: User=spender over budget\. Spend=[\d.]+, Budget=0\.01",
                        (await resp.json())["error"]["message"])
    # A team key of the same user answers to the team, not to the user's own budget.
    assert (await client.post("/v1/chat/completions", json=chat(), headers=team_key)).status \
        == 200


@both_databases
async def test_a_team_keys_spend_counts_towards_its_users_personal_budget(start, fake_upstream,
                                                                          chat):
    client = await priced(start, fake_upstream)
    personal, team_key = await personal_and_team_key(client, "both", 0.075)
    for key in (personal, team_key):  # ~0.05 each: the user's 0.075 is spent
        assert (await client.post("/v1/chat/completions", json=chat(),
                                  headers=key)).status == 200
    await settle(client)
    assert (await admin_get(client, "/user/info", user_id="both"))["user_info"]["spend"] > 0.075
    resp = await client.post("/v1/chat/completions", json=chat(), headers=personal)
    assert resp.status == 400
    assert "User=both over budget" in (await resp.json())["error"]["message"]


async def test_a_users_models_bound_their_personal_keys(start, chat):
    client = await start()
    made = await admin_post(client, "/user/new", {"user_id": "narrow", "models": ["mock-echo"]})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401
    # The auto-created key inherits the user's models, so the key check speaks first.
    assert "mock-echo" in (await resp.json())["error"]["message"]
    key = bearer((await admin_post(client, "/key/generate", {"user_id": "narrow"}))["key"])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "user_model_access_denied"


@both_databases
async def test_a_team_members_budget_binds_that_member_only(start, fake_upstream, chat):
    client = await priced(start, fake_upstream)
    await admin_post(client, "/team/new", {"team_id": "t-members"})
    await admin_post(client, "/team/member_add", {
        "team_id": "t-members", "member": [{"role": "user", "user_id": "capped"},
                                           {"role": "user", "user_id": "free"}]})
    await admin_post(client, "/team/member_update", {
        "team_id": "t-members", "user_id": "capped", "max_budget_in_team": 0.01})
    capped, free = [bearer((await admin_post(client, "/key/generate", {
        "team_id": "t-members", "user_id": who}))["key"]) for who in ("capped", "free")]
    assert (await client.post("/v1/chat/completions", json=chat(), headers=capped)).status \
        == 200
    await settle(client)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=capped)
    assert resp.status == 400
    assert re.fullmatch(r"Budget has been exceeded! Current cost: [\d.]+, Max budget: 0\.01",
                        (await resp.json())["error"]["message"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=free)).status == 200
    await settle(client)
    info = await (await client.get("/team/info", params={"team_id": "t-members"},
                                   headers=ADMIN)).json()
    spend = {m["user_id"]: m["spend"] for m in info["team_memberships"]}
    assert spend["capped"] > 0.01 and spend["free"] > 0


@both_databases
async def test_an_organizations_budget_and_models_bound_its_teams_keys(start, fake_upstream,
                                                                     chat):
    client = await priced(start, fake_upstream)
    org = await admin_post(client, "/organization/new", {
        "organization_alias": "acme", "models": ["gpt-4o"], "max_budget": 0.01})
    await admin_post(client, "/team/new", {"team_id": "t-org",
                                           "organization_id": org["organization_id"]})
    key = bearer((await admin_post(client, "/key/generate", {"team_id": "t-org"}))["key"])
    resp = await client.post("/v1/chat/completions", json=chat(model="mock-echo"), headers=key)
    assert resp.status == 401
    assert (await resp.json())["error"]["type"] == "org_model_access_denied"
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    await settle(client)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith(
        f"Budget has been exceeded! Organization={org['organization_id']} Current cost: ")
    info = await (await client.get("/organization/info", params={
        "organization_id": org["organization_id"]}, headers=ADMIN)).json()
    assert info["spend"] > 0.01
    assert [t["team_id"] for t in info["teams"]] == ["t-org"]


async def test_a_viewer_may_read_but_not_call_models(start, chat):
    client = await start()
    made = await admin_post(client, "/user/new", {"user_id": "viewer",
                                                  "user_role": "proxy_admin_viewer"})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "user not allowed to access this OpenAI routes, role= proxy_admin_viewer")


async def test_an_end_users_and_a_members_request_limits_bind_whatever_key(start, chat):
    client = await start()
    await admin_post(client, "/customer/new", {"user_id": "chatty", "rpm_limit": 1})
    await admin_post(client, "/team/new", {"team_id": "t-rpm"})
    await admin_post(client, "/team/member_add", {
        "team_id": "t-rpm", "member": {"role": "user", "user_id": "hasty"}})
    await admin_post(client, "/team/member_update", {"team_id": "t-rpm", "user_id": "hasty",
                                                     "rpm_limit": 1})
    keys = [bearer((await admin_post(client, "/key/generate", {
        "team_id": "t-rpm", "user_id": "hasty"}))["key"]) for _ in range(2)]
    others = [bearer((await admin_post(client, "/key/generate", {}))["key"]) for _ in range(2)]
    # Calls in one minute window; a run straddling two minutes is run again.
    for _ in range(2):
        minute = int(time.time() // 60)
        answers = [
            await client.post("/v1/chat/completions", json=chat(user="chatty"),
                              headers=others[0]),
            await client.post("/v1/chat/completions", json=chat(user="chatty"),
                              headers=others[1]),
            await client.post("/v1/chat/completions", json=chat(), headers=keys[0]),
            await client.post("/v1/chat/completions", json=chat(), headers=keys[1])]
        if int(time.time() // 60) == minute:
            break
    assert [answer.status for answer in answers] == [200, 429, 200, 429]
    # LiteLLM's 429, naming the scope and who in it.
    for answer, named in ((answers[1], "end_user: chatty"),
                          (answers[3], "team_member: t-rpm:hasty")):
        assert (await answer.json())["error"]["message"].startswith(
            f"Rate limit exceeded for {named}. Limit type: requests. Current limit: 1,")


async def test_user_header_name_names_the_end_user_before_the_body(start, chat):
    client = await start({"general_settings": {"user_header_name": "X-End-User"}})
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    await admin_post(client, "/customer/block", {"user_ids": ["from-header"]})
    resp = await client.post("/v1/chat/completions", json=chat(user="from-body"),
                             headers={**key, "X-End-User": "from-header"})
    assert resp.status == 400
    assert "User=from-header" in (await resp.json())["error"]["message"]
    resp = await client.post("/v1/chat/completions", json=chat(user="from-header"),
                             headers={**key, "X-End-User": "someone-else"})
    assert resp.status == 200


async def test_the_customer_header_mapping_names_the_end_user_before_user_header_name(
        start, fake_upstream, chat, caplog):
    client = await priced(start, fake_upstream, general_settings={
        "user_header_name": "X-End-User",
        "user_header_mappings": [
            {"header_name": "X-OpenWebUI-User-Id", "litellm_user_role": "internal_user"},
            {"header_name": "X-OpenWebUI-User-Email", "litellm_user_role": "customer"}]})
    assert any("the internal_user mapping of 'X-OpenWebUI-User-Id' is ignored"
               in r.getMessage() for r in caplog.records)
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    await admin_post(client, "/customer/block", {"user_ids": ["blocked@example.com"]})
    resp = await client.post("/v1/chat/completions", json=chat(user="fine"), headers={
        **key, "X-OpenWebUI-User-Email": "blocked@example.com", "X-End-User": "fine"})
    assert resp.status == 400
    assert "User=blocked@example.com" in (await resp.json())["error"]["message"]
    # The mapped header's end user is charged for the call.
    resp = await client.post("/v1/chat/completions", json=chat(model="gpt-4o", user="someone"),
                             headers={**key, "X-OpenWebUI-User-Email": "paying@example.com"})
    assert resp.status == 200
    await settle(client)
    info = await admin_get(client, "/customer/info", end_user_id="paying@example.com")
    assert info["spend"] > 0


def test_a_user_header_mapping_with_an_unknown_role_stops_the_start():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"general_settings": {"user_header_mappings": [
            {"header_name": "X-Who", "litellm_user_role": "proxy_admin"}]}})
    assert "user_header_mappings" in str(err.value)


async def test_an_end_users_region_and_default_model_steer_their_calls(start, fake_upstream,
                                                                       chat):
    def deployment(ident, **params):
        entry = fake_upstream.model_entry("gpt-4o", **params)
        return {**entry, "model_info": {"id": ident}}

    client = await start({"model_list": [
        deployment("gpt-eu", region_name="eu"), deployment("gpt-us", region_name="us"),
        {**fake_upstream.model_entry("unplaced"), "model_info": {"id": "unplaced-1"}}]})
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    made = await admin_post(client, "/customer/new", {
        "user_id": "eu-cust", "allowed_model_region": "eu", "default_model": "gpt-4o"})
    assert (made["allowed_model_region"], made["default_model"]) == ("eu", "gpt-4o")

    async def served_by(body):
        resp = await client.post("/v1/chat/completions", json=body, headers=key)
        assert resp.status == 200, await resp.text()
        return resp.headers["x-litellm-model-id"], resp.headers.get("x-litellm-model-region")

    assert {await served_by(chat(user="eu-cust")) for _ in range(4)} == {("gpt-eu", "eu")}
    assert {await served_by(chat(user="anyone")) for _ in range(4)} == {
        ("gpt-eu", None), ("gpt-us", None)}
    # Named by id, a deployment outside the region is refused rather than swapped.
    for model in ("unplaced", "gpt-us"):
        resp = await client.post("/v1/chat/completions", json=chat(model=model, user="eu-cust"),
                                 headers=key)
        assert resp.status == 429
        assert "No deployments available for selected model" in (
            await resp.json())["error"]["message"]

    # No model in the request: the end user's default model serves it.
    no_model = {"messages": [{"role": "user", "content": "hi"}]}
    assert await served_by({**no_model, "user": "eu-cust"}) == ("gpt-eu", "eu")
    assert fake_upstream.last["model"] == "gpt-4o"
    resp = await client.post("/v1/chat/completions", json={**no_model, "user": "anyone"},
                             headers=key)
    assert resp.status == 400


@pytest.mark.parametrize("path", ["/customer/new", "/customer/update"])
async def test_a_default_model_the_gateway_does_not_serve_is_refused(start, path):
    client = await start()
    await admin_post(client, "/customer/new", {"user_id": "c-1"})
    resp = await client.post(path, json={"user_id": "c-new" if path.endswith("new") else "c-1",
                                         "default_model": "not-served"}, headers=ADMIN)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["type"] == "internal_error"
    assert error["message"].startswith("{'error': \"Default Model not on proxy.")
    assert "Default_model=not-served" in error["message"]
