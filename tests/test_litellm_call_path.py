"""The call path as LiteLLM's clients see it: model access refused before a model's existence is
asked, its wording for unknown and missing models, the ``x-litellm-*`` reply headers, Azure-style
deployment routes, access groups, wildcard and aliased models -- driven by the official
``openai`` client where it fits."""

import openai
import pytest

from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer
from gatehouse.errors import ClientError
from gatehouse.guardrails.call import Call, Principal
from gatehouse.testing import GATEWAY

CHAT = [{"role": "user", "content": "hello"}]


def oai(client, key):
    return openai.AsyncOpenAI(api_key=key, base_url=str(client.make_url("/v1")), max_retries=0)


async def new_key(client, **fields):
    return (await admin_post(client, "/key/generate", fields))["key"]


async def test_a_key_not_allowed_a_model_gets_401_before_the_model_is_looked_up(start):
    client = await start()
    key = await new_key(client, models=["mock-echo"])
    async with oai(client, key) as api:
        for model in ("gpt-4o", "no-such-model"):
            with pytest.raises(openai.AuthenticationError) as err:
                await api.chat.completions.create(model=model, messages=CHAT)
            assert err.value.status_code == 401
            assert err.value.body == {
                "message": f"key not allowed to access model. This key can only access "
                           f"models=['mock-echo']. Tried to access {model}",
                "type": "key_model_access_denied", "param": "model", "code": "401"}


async def test_a_team_not_allowed_a_model_gets_team_model_access_denied(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "t-echo", "models": ["mock-echo"]})
    key = await new_key(client, team_id="t-echo")
    async with oai(client, key) as api:
        with pytest.raises(openai.AuthenticationError) as err:
            await api.chat.completions.create(model="gpt-4o", messages=CHAT)
        assert err.value.body["type"] == "team_model_access_denied"
        assert err.value.body["message"] == (
            "team not allowed to access model. This team can only access "
            "models=['mock-echo']. Tried to access gpt-4o")
        reply = await api.chat.completions.create(model="mock-echo", messages=CHAT)
        assert reply.choices[0].message.content


async def test_unknown_and_missing_models_are_litellm_bad_request_errors(start, fake_upstream):
    client = await start()
    key = await new_key(client)
    async with oai(client, key) as api:
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(model="gpt-9", messages=CHAT)
        message = err.value.body["message"]
        assert message.startswith("litellm.BadRequestError: You passed in model=gpt-9.")
        assert "Received Model Group=gpt-9" in message
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(model="gpt-4o", messages=[])
        with pytest.raises(openai.BadRequestError) as err:
            await api.chat.completions.create(model="", messages=CHAT, extra_body={
                "model": None})
    resp = await client.post("/v1/chat/completions", json={"messages": CHAT},
                             headers=bearer(key))
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith(
        "litellm.BadRequestError: You passed in model=None.")
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o"},
                             headers=bearer(key))
    assert (await resp.json())["error"]["message"] == (
        "litellm.BadRequestError: OpenAIException - Missing required parameter: 'messages'.")
    assert fake_upstream.received == []


async def test_success_headers(start, fake_upstream):
    fake_upstream.reply = "Hello there!"
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    key = await new_key(client, max_budget=5.0, tpm_limit=1000, rpm_limit=100)
    async with oai(client, key) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=CHAT, extra_headers={"x-litellm-call-id": "my-call-7"})
    headers = raw.headers
    deployment = client.app[GATEWAY].router.routes.groups["gpt-4o"][0]
    assert headers["x-litellm-call-id"] == "my-call-7"
    assert headers["x-litellm-model-id"] == deployment.id
    assert headers["x-litellm-model-group"] == "gpt-4o"
    assert headers["x-litellm-model-api-base"] == fake_upstream.url
    assert headers["x-litellm-version"] == "1.78.5"
    # 5 prompt and 2 completion tokens ("Hello there!") at the model's prices.
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(5 * 0.001 + 2 * 0.002)
    assert headers["x-litellm-key-spend"] == "0.0"
    assert headers["x-litellm-key-max-budget"] == "5.0"
    assert headers["x-litellm-key-tpm-limit"] == "1000"
    assert headers["x-litellm-key-rpm-limit"] == "100"
    assert float(headers["x-litellm-response-duration-ms"]) >= 0
    assert float(headers["x-litellm-overhead-duration-ms"]) >= 0
    assert headers["x-litellm-attempted-retries"] == "0"
    assert headers["x-litellm-attempted-fallbacks"] == "0"


async def test_upstream_headers_are_passed_on_with_the_llm_provider_prefix(gateway,
                                                                           fake_upstream):
    fake_upstream.response_headers = {"x-request-id": "req-123", "openai-processing-ms": "12",
                                      "Set-Cookie": "upstream-session=abc"}
    client = await gateway()
    async with oai(client, "anything") as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o",
                                                                  messages=CHAT)
        assert raw.headers["llm_provider-x-request-id"] == "req-123"
        assert raw.headers["llm_provider-openai-processing-ms"] == "12"
        assert raw.headers["llm_provider-content-type"] == "application/json"
        # Neither the upstream's cookies nor what it runs on.
        assert "llm_provider-set-cookie" not in raw.headers
        assert "llm_provider-server" not in raw.headers
        stream = await api.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=CHAT, stream=True)
        assert stream.headers["llm_provider-x-request-id"] == "req-123"
        # Only a success carries them.
        fake_upstream.fail(500)
        with pytest.raises(openai.InternalServerError) as err:
            await api.chat.completions.create(model="gpt-4o", messages=CHAT)
        assert not [h for h in err.value.response.headers if h.startswith("llm_provider-")]


async def test_error_headers_after_auth(start):
    client = await start()
    key = await new_key(client, models=["mock-echo"])
    resp = await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": CHAT},
                             headers=bearer(key))
    assert resp.status == 401
    assert resp.headers["x-litellm-response-cost"] == "0"
    assert resp.headers["x-litellm-key-spend"] == "0.0"
    assert resp.headers["x-litellm-version"] == "1.78.5"
    assert resp.headers["x-litellm-call-id"]
    assert "x-litellm-model-id" not in resp.headers


async def test_azure_style_deployment_routes(start, fake_upstream):
    fake_upstream.reply = "Hello there!"
    client = await start()
    key = await new_key(client)
    async with openai.AsyncAzureOpenAI(api_key=key, azure_endpoint=str(client.make_url("")),
                                       api_version="2024-06-01", max_retries=0) as azure:
        reply = await azure.chat.completions.create(model="gpt-4o", messages=CHAT)
        assert reply.choices[0].message.content == "Hello there!"
        embedded = await azure.embeddings.create(model="gpt-4o", input="x")
        assert embedded.data[0].embedding == [0.1, 0.2, 0.3]
        with pytest.raises(openai.BadRequestError):
            await azure.completions.create(model="nope", prompt="x")
    assert [body["model"] for body in fake_upstream.received] == ["gpt-4o", "gpt-4o"]


async def test_access_groups_and_wildcard_entries_in_key_lists(start, fake_upstream):
    client = await start({"model_list": [
        {**fake_upstream.model_entry("gpt-4o"), "model_info": {"access_groups": ["beta"]}},
        {"model_name": "mock-echo", "params": {"model": "mock/echo"}},
    ]})
    beta = await new_key(client, models=["beta"])
    pattern = await new_key(client, models=["openai/*"])
    async with oai(client, beta) as api:
        await api.chat.completions.create(model="gpt-4o", messages=CHAT)
        with pytest.raises(openai.AuthenticationError):
            await api.chat.completions.create(model="mock-echo", messages=CHAT)
        listed = await api.models.list()
        assert [m.id for m in listed.data] == ["gpt-4o"]
    async with oai(client, pattern) as api:
        # A bare name matches a pattern written with the provider it implies.
        await api.chat.completions.create(model="gpt-4o", messages=CHAT)
        with pytest.raises(openai.AuthenticationError):
            await api.chat.completions.create(model="mock-echo", messages=CHAT)
    resp = await client.get("/v1/models", params={"include_model_access_groups": "true",
                                                  "only_model_access_groups": "true"},
                            headers=bearer(beta))
    assert [m["id"] for m in (await resp.json())["data"]] == ["beta"]


async def test_wildcard_deployments_send_the_name_each_star_captured(start, fake_upstream):
    base = {"api_base": fake_upstream.url, "api_key": "sk-up"}
    client = await start({"model_list": [
        fake_upstream.model_entry("gpt-4o"),
        {"model_name": "openai/*", "params": {"model": "openai/*", **base}},
        {"model_name": "llmengine/*", "params": {"model": "openai/*", **base}},
        {"model_name": "team-*", "params": {"model": "openai/gpt-4o-mini", **base}},
    ]})
    key = await new_key(client)
    async with oai(client, key) as api:
        for model in ("openai/gpt-4.1", "llmengine/foo", "team-a", "gpt-4o", "openai/gpt-4o"):
            raw = await api.chat.completions.with_raw_response.create(model=model,
                                                                      messages=CHAT)
            assert raw.headers["x-litellm-model-group"] in (
                "openai/*", "llmengine/*", "team-*", "gpt-4o")
    assert [body["model"] for body in fake_upstream.received] == [
        "gpt-4.1", "foo", "gpt-4o-mini", "gpt-4o", "gpt-4o"]


async def test_wildcard_groups_are_listed_with_the_catalogues_models(start, fake_upstream):
    base = {"api_base": fake_upstream.url, "api_key": "sk-up"}
    client = await start({"model_list": [
        {"model_name": "openai/gpt-4o*", "params": {"model": "openai/*", **base}},
        {"model_name": "llmengine/*", "params": {"model": "openai/*", **base}},
    ]})
    listed = [m["id"] for m in (await admin_get(client, "/v1/models"))["data"]]
    assert listed == ["openai/gpt-4o*", "llmengine/*", "openai/gpt-4o", "openai/gpt-4o-mini"]
    groups = {g["model_group"]: g["providers"]
              for g in (await admin_get(client, "/model_group/info"))["data"]}
    assert groups == {"openai/gpt-4o*": ["openai"], "llmengine/*": ["openai"]}


@pytest.mark.parametrize("model_name,model,requested,upstream", [
    # A catch-all forwards the requested name.
    ("*", "*", ["gpt-3.5-turbo", "openai/gpt-4o-mini"], ["gpt-3.5-turbo", "gpt-4o-mini"]),
    # A bare model is OpenAI's; a deployment's own litellm_params.model routes to it too.
    ("cheap", "gpt-3.5-turbo", ["cheap", "gpt-3.5-turbo"], ["gpt-3.5-turbo"] * 2),
])
async def test_catch_all_and_bare_model_deployments(gateway, fake_upstream, model_name, model,
                                                    requested, upstream):
    client = await gateway({"model_list": [{"model_name": model_name, "litellm_params": {
        "model": model, "api_base": fake_upstream.url}}]})
    async with oai(client, "anything") as api:
        for name in requested:
            await api.chat.completions.create(model=name, messages=CHAT)
    assert [body["model"] for body in fake_upstream.received] == upstream


async def test_model_group_aliases_route_and_list(gateway, fake_upstream):
    client = await gateway({"router_settings": {"model_group_alias": {
        "gpt-4": "gpt-4o", "secret-alias": {"model": "gpt-4o", "hidden": True}}}})
    async with oai(client, "anything") as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4",
                                                                  messages=CHAT)
        assert raw.headers["x-litellm-model-group"] == "gpt-4o"
        await api.chat.completions.create(model="secret-alias", messages=CHAT)
        assert [m.id for m in (await api.models.list()).data] == ["gpt-4o", "mock-echo",
                                                                  "gpt-4"]
    assert [body["model"] for body in fake_upstream.received] == ["gpt-4o", "gpt-4o"]


async def test_models_listing_follows_key_then_team(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "t-list", "models": ["mock-echo"]})
    team_key = await new_key(client, team_id="t-list")
    own = await new_key(client, team_id="t-list", models=["gpt-4o"])
    everything = await new_key(client, models=["all-team-models"], team_id="t-list")
    for key, expected in ((team_key, ["mock-echo"]), (own, ["gpt-4o"]),
                          (everything, ["mock-echo"])):
        body = await (await client.get("/v1/models", headers=bearer(key))).json()
        assert [m["id"] for m in body["data"]] == expected
    resp = await client.get("/v1/models/gpt-4o", headers=bearer(team_key))
    assert resp.status == 404
    assert await resp.json() == {
        "detail": "The model `gpt-4o` does not exist or is not accessible"}
    resp = await client.get("/v1/models/mock-echo", headers=bearer(team_key))
    assert (await resp.json())["owned_by"] == "mock"
    resp = await client.get("/v1/models", params={"team_id": "t-list"}, headers=ADMIN)
    assert [m["id"] for m in (await resp.json())["data"]] == ["mock-echo"]
    resp = await client.get("/v1/models", params={"team_id": "other"}, headers=bearer(own))
    assert resp.status == 403


async def test_a_team_model_alias_is_allowed_and_calls_the_model_it_names(gateway,
                                                                         fake_upstream):
    # Team rows carry model_aliases once teams store them; the router and the access check
    # read them from the principal's team.
    client = await gateway()
    gateway_ = client.app[GATEWAY]
    team = {"team_id": "t", "models": ["gpt-4o"], "model_aliases": {"cheap": "gpt-4o"}}
    principal = Principal(key_hash="h", team_id="t", key={"models": []}, team=team)
    call = Call(request_id="r", call_type="chat_completion", model="cheap",
                body={"messages": CHAT}, principal=principal)
    gateway_.model_access.check(principal, "cheap")
    provider = gateway_.router.provider_for(call)
    assert call.model == "gpt-4o" and provider.model_name == "gpt-4o"
    with pytest.raises(ClientError) as err:
        gateway_.model_access.check(principal, "mock-echo")
    assert err.value.body["error"]["type"] == "team_model_access_denied"
