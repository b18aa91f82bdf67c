"""The order a model call's checks run in (management API §11.1): when a call fails several,
the client gets the error of the first, as LiteLLM answers. One test per pair whose order
matters: the key's model access before its expiry and routes, budgets before a blocked team,
the viewer role and rate limits, rate limits before blocked users."""

import pytest
from admin_kit import admin_post, bearer

MOCK = {"model_list": [{"model_name": "gpt-4o", "params": {"model": "mock/echo"}}]}
# A model the key below may not use, and an amount it has spent over its budget.
NOT_ALLOWED = {"models": ["some-other-model"]}
OVER_BUDGET = {"max_budget": 0.001, "spend": 0.002}


async def call(client, key, path="/v1/chat/completions", **extra):
    resp = await client.post(path, headers=bearer(key), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], **extra})
    return resp.status, (await resp.json())["error"]


async def key(client, **fields):
    return (await admin_post(client, "/key/generate", fields))["key"]


async def test_key_model_access_comes_before_expiry(start):
    client = await start(MOCK)
    status, error = await call(client, await key(client, duration="0s", **NOT_ALLOWED))
    assert (status, error["type"], error["param"]) == (401, "key_model_access_denied", "model")


async def test_key_model_access_comes_before_the_keys_routes(start):
    client = await start(MOCK)
    status, error = await call(client, await key(client, allowed_routes=["/key/info"],
                                                 **NOT_ALLOWED))
    assert (status, error["type"]) == (401, "key_model_access_denied")


async def test_the_keys_budget_comes_before_its_routes(start):
    client = await start(MOCK)
    status, error = await call(client, await key(client, allowed_routes=["/key/info"],
                                                 **OVER_BUDGET))
    assert (status, error["type"]) == (400, "budget_exceeded")


async def test_key_model_access_and_budget_come_before_a_blocked_team(start):
    client = await start(MOCK)
    await admin_post(client, "/team/new", {"team_id": "t-blocked"})
    await admin_post(client, "/team/block", {"team_id": "t-blocked"})
    status, error = await call(client, await key(client, team_id="t-blocked", **NOT_ALLOWED))
    assert (status, error["type"]) == (401, "key_model_access_denied")
    status, error = await call(client, await key(client, team_id="t-blocked", **OVER_BUDGET))
    assert (status, error["type"]) == (400, "budget_exceeded")
    # Passing both, the blocked team is what the caller hears of.
    status, error = await call(client, await key(client, team_id="t-blocked"))
    assert status == 401 and "Team=t-blocked is blocked" in error["message"]


async def test_a_team_members_budget_comes_before_the_keys_expiry(start):
    client = await start(MOCK)
    await admin_post(client, "/team/new", {"team_id": "t-capped"})
    await admin_post(client, "/team/member_add", {
        "team_id": "t-capped", "member": [{"role": "user", "user_id": "capped"}]})
    await admin_post(client, "/team/member_update", {
        "team_id": "t-capped", "user_id": "capped", "max_budget_in_team": 0})
    status, error = await call(client, await key(client, team_id="t-capped", user_id="capped",
                                                 duration="0s"))
    assert (status, error["type"]) == (400, "budget_exceeded")


async def test_an_end_users_budget_comes_before_the_keys_model_access(start):
    client = await start(MOCK)
    await admin_post(client, "/customer/new", {"user_id": "spent-customer", "max_budget": 0})
    status, error = await call(client, await key(client, **NOT_ALLOWED), user="spent-customer")
    assert (status, error["type"]) == (400, "budget_exceeded")


async def test_model_access_and_budgets_come_before_the_viewer_role(start):
    client = await start(MOCK)
    narrow = await admin_post(client, "/user/new", {
        "user_id": "narrow-viewer", "user_role": "proxy_admin_viewer", **NOT_ALLOWED})
    status, error = await call(client, narrow["key"])
    assert (status, error["type"]) == (401, "key_model_access_denied")
    spent = await admin_post(client, "/user/new", {
        "user_id": "spent-viewer", "user_role": "proxy_admin_viewer", "max_budget": 0})
    status, error = await call(client, spent["key"])
    assert (status, error["type"]) == (400, "budget_exceeded")


async def test_budgets_come_before_rate_limits(start):
    client = await start(MOCK)
    await admin_post(client, "/team/new", {"team_id": "t-spent", "max_budget": 0})
    limited = await key(client, team_id="t-spent", rpm_limit=1)
    # A call refused for its budget never reaches the rate limit, so it does not count.
    for _ in range(3):
        status, error = await call(client, limited)
        assert (status, error["type"]) == (400, "budget_exceeded")


async def test_rate_limits_come_before_blocked_users(start):
    client = await start(MOCK)
    await admin_post(client, "/customer/new", {"user_id": "blocked-owner", "blocked": True})
    limited = await key(client, user_id="blocked-owner", rpm_limit=1)
    status, error = await call(client, limited)
    assert status == 400 and "User=blocked-owner" in error["message"]
    status, error = await call(client, limited)
    assert status == 429


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions",
                                  "/openai/deployments/gpt-4o/chat/completions"])
async def test_an_expired_key_is_refused_on_every_model_call_path(start, path):
    client = await start(MOCK)
    status, error = await call(client, await key(client, duration="0s"), path)
    assert (status, error["type"]) == (400, "expired_key")
    embeddings = path.replace("chat/completions", "embeddings")
    resp = await client.post(embeddings, headers=bearer(await key(client, duration="0s")),
                             json={"model": "gpt-4o", "input": "hello"})
    assert (resp.status, (await resp.json())["error"]["type"]) == (400, "expired_key")
