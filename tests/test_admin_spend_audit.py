"""Spend reports, cost estimates, blocked users, required params and audit rows: what an
operator reads and controls through the admin API."""

import asyncio
import uuid

import orjson
import pytest
from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer, both_databases
from doubles import PLUGINS, guardrail
from gatehouse.app import GATEWAY

async def settle(client):
    """Wait for the calls made so far to be priced and written to the database."""
    gw = client.app[GATEWAY]
    await gw.call_log.drain()
    await gw.accounting.flush()


async def status_becomes(expected, call, attempts=50):
    """The response of ``call`` once its status is ``expected`` -- a gateway re-reads the
    blocked-user list once a second."""
    for _ in range(attempts):
        resp = await call()
        if resp.status == expected:
            return resp
        await asyncio.sleep(0.1)
    raise AssertionError(f"status never became {expected}; last {resp.status}")


@both_databases
async def test_spend_logs_and_tags_show_each_call(start, fake_upstream, chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "guardrails": [guardrail("checker", default_on=True)]},
                         plugins=PLUGINS)
    team = await admin_post(client, "/team/new", {"team_alias": "growth"})
    key = await admin_post(client, "/key/generate", {"team_id": team["team_id"],
                                                     "key_alias": "growth-app",
                                                     "user_id": "owner-1"})
    tag, other_tag = f"app-{uuid.uuid4().hex[:8]}", f"model-{uuid.uuid4().hex[:8]}"
    request_ids = []
    for tags in ([tag, other_tag], [tag]):
        resp = await client.post("/v1/chat/completions", headers=bearer(key["key"]), json=chat(
            metadata={"tags": tags, "spend_logs_metadata": {"hello": "world"}}))
        assert resp.status == 200
        request_ids.append(resp.headers["x-request-id"])
    await settle(client)

    [log] = await admin_get(client, "/spend/logs", request_id=request_ids[0])
    assert log["request_id"] == request_ids[0]
    assert (log["call_type"], log["model"], log["status"]) == ("acompletion", "gpt-4o",
                                                                "success")
    assert log["spend"] == pytest.approx(5 * 0.001 + 5 * 0.002)
    assert (log["prompt_tokens"], log["completion_tokens"], log["total_tokens"]) == (5, 5, 10)
    [checker] = log["metadata"].pop("guardrail_information")
    assert (checker["guardrail_name"], checker["guardrail_status"]) == ("checker", "success")
    assert log["metadata"] == {
        "user_api_key": key["token"], "user_api_key_alias": "growth-app",
        "spend_logs_metadata": {"hello": "world"},
        "user_api_key_team_id": team["team_id"], "user_api_key_user_id": "owner-1",
        "user_api_key_team_alias": "growth"}
    assert log["request_tags"] == [tag, other_tag]
    assert log["requester_ip_address"] == "127.0.0.1"
    assert log["guardrails"] == {"checker": "passed"}
    assert log["startTime"] <= log["endTime"]

    by_key = await admin_get(client, "/spend/logs", api_key=key["key"])
    assert sorted(r["request_id"] for r in by_key) == sorted(request_ids)

    totals = {row["individual_request_tag"]: row for row in await admin_get(client,
                                                                           "/spend/tags")}
    assert totals[tag]["log_count"] == 2
    assert totals[tag]["total_spend"] == pytest.approx(2 * log["spend"])
    assert totals[other_tag]["log_count"] == 1


@both_databases
@pytest.mark.parametrize("stream", [False, True])
async def test_a_spend_row_is_found_by_the_reply_id_the_client_holds(start, fake_upstream, chat,
                                                                     stream):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post("/v1/chat/completions", headers=bearer(key["key"]),
                             json=chat(stream=stream))
    text = await resp.text()
    reply_id = fake_upstream_reply_id(text, stream)
    assert reply_id.startswith("chatcmpl-")
    call_id = resp.headers["x-request-id"]
    assert resp.headers["x-litellm-call-id"] == call_id
    await settle(client)

    [by_reply] = await admin_get(client, "/spend/logs", request_id=reply_id)
    [by_call] = await admin_get(client, "/spend/logs", request_id=call_id)
    assert by_reply == by_call
    assert (by_reply["request_id"], by_reply["response_id"]) == (call_id, reply_id)
    assert await admin_get(client, "/spend/logs", request_id="chatcmpl-nobody") == []


def fake_upstream_reply_id(text, stream):
    if not stream:
        return orjson.loads(text)["id"]
    first = next(line for line in text.splitlines() if line.startswith("data: {"))
    return orjson.loads(first[6:])["id"]


@both_databases
async def test_streams_are_priced_from_the_upstreams_usage_chunk(start, fake_upstream, chat):
    fake_upstream.reply = "four words of reply"
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    key = await admin_post(client, "/key/generate", {})
    resp = await client.post("/v1/chat/completions", headers=bearer(key["key"]),
                             json=chat(stream=True))
    text = await resp.text()
    # The gateway asked for the count; the client, who did not, never sees that chunk.
    assert fake_upstream.last["stream_options"] == {"include_usage": True}
    assert '"usage"' not in text and text.rstrip().endswith("data: [DONE]")
    await settle(client)

    [row] = await admin_get(client, "/spend/logs", request_id=resp.headers["x-request-id"])
    # The fake upstream counts 5 prompt tokens; an estimate from the text would say 0.
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 4)
    assert row["spend"] == pytest.approx(5 * 0.001 + 4 * 0.002)


async def test_spend_calculate_prices_messages_and_completions(start, fake_upstream):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    # 40 characters at about four characters a token: 10 prompt tokens.
    resp = await client.post("/spend/calculate", headers=ADMIN, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 40}]})
    assert resp.status == 200
    assert (await resp.json())["cost"] == pytest.approx(10 * 0.001)

    resp = await client.post("/spend/calculate", headers=ADMIN, json={"completion_response": {
        "model": "gpt-4o", "choices": [{"message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}})
    assert resp.status == 200
    assert (await resp.json())["cost"] == pytest.approx(100 * 0.001 + 50 * 0.002)


async def test_public_routes_open_spend_calculate_to_callers_without_a_key(start):
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hey, how's it going?"}]}
    closed = await start()
    resp = await closed.post("/spend/calculate", json=body)
    assert resp.status == 401

    opened = await start({"general_settings": {
        "public_routes": ["LiteLLMRoutes.public_routes", "/spend/calculate"]}})
    resp = await opened.post("/spend/calculate", json=body)
    assert resp.status == 200
    assert (await resp.json())["cost"] > 0
    # Only that route: the rest of the admin API still needs the master key.
    assert (await opened.get("/spend/logs")).status == 401


@pytest.mark.parametrize("body,param,needle", [
    ({}, "model", "completion_response"),
    ({"model": "gpt-4o"}, "messages", "completion_response"),
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}, "model", "gpt-9"),
    ({"model": "gpt-4o", "messages": [{"content": "x"}]}, "messages", "messages[0].role"),
])
async def test_spend_calculate_refuses_what_it_cannot_price(start, body, param, needle):
    client = await start()
    resp = await client.post("/spend/calculate", json=body, headers=ADMIN)
    assert resp.status == 400, await resp.text()
    error = (await resp.json())["error"]
    assert (error["param"], error["code"]) == (param, "400")
    assert needle in error["message"]


@pytest.mark.parametrize("body,loc", [
    ({"completion_response": {"model": "gpt-4o", "usage": {"prompt_tokens": "many"}}},
     ["body", "completion_response", "usage", "prompt_tokens"]),
    ({"model": "gpt-4o", "messages": "hi"}, ["body", "messages"]),
])
async def test_spend_calculate_bodies_of_the_wrong_shape_are_422s(start, body, loc):
    client = await start()
    resp = await client.post("/spend/calculate", json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["detail"][0]["loc"] == loc


@both_databases
async def test_blocking_a_customer_refuses_their_calls_until_unblocked(start, fake_upstream,
                                                                       chat):
    client = await start()
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])

    async def as_blocked_user():
        return await client.post("/v1/chat/completions", json=chat(user="user-7"), headers=key)

    assert (await as_blocked_user()).status == 200
    blocked = await admin_post(client, "/customer/block", {"user_ids": ["user-7"]})
    assert [(row["user_id"], row["blocked"]) for row in blocked["blocked_users"]] == [
        ("user-7", True)]
    resp = await status_becomes(400, as_blocked_user)
    assert await resp.json() == {"error": {
        "message": "User blocked from making LLM API Calls. User=user-7",
        "details": {"error": "User blocked from making LLM API Calls. User=user-7"},
        "type": "guardrail_violation", "param": None, "code": "400"}}
    resp = await client.post("/v1/chat/completions", json=chat(user="user-8"), headers=key)
    assert resp.status == 200

    await admin_post(client, "/customer/unblock", {"user_ids": ["user-7"]})
    await status_becomes(200, as_blocked_user)
    # LiteLLM documents the unblock at /user/unblock.
    await admin_post(client, "/customer/block", {"user_ids": ["user-7"]})
    await status_becomes(400, as_blocked_user)
    await admin_post(client, "/user/unblock", {"user_ids": ["user-7"]})
    await status_becomes(200, as_blocked_user)


async def test_a_blocked_keys_owner_is_refused_whatever_user_the_body_names(start, chat):
    client = await start({"litellm_settings": {"blocked_user_list": ["owner-9", "end-user-3"]}})
    owned = bearer((await admin_post(client, "/key/generate", {"user_id": "owner-9"}))["key"])
    for named in (None, "someone-else"):
        body = chat() if named is None else chat(user=named)
        resp = await client.post("/v1/chat/completions", json=body, headers=owned)
        assert resp.status == 400
        assert (await resp.json())["error"]["details"]["error"] == (
            "User blocked from making LLM API Calls. User=owner-9")
    # A key of an unblocked owner still may not act for a blocked end user.
    other = bearer((await admin_post(client, "/key/generate", {"user_id": "owner-1"}))["key"])
    resp = await client.post("/v1/chat/completions", json=chat(user="end-user-3"), headers=other)
    assert resp.status == 400
    resp = await client.post("/v1/chat/completions", json=chat(user="end-user-4"), headers=other)
    assert resp.status == 200


@pytest.mark.parametrize("listed", ["list", "file"])
async def test_blocked_user_list_from_config(start, tmp_path, chat, listed):
    blocked = ["opted-out-1", "opted-out-2"]
    if listed == "file":
        (tmp_path / "blocked.txt").write_text("# opted out of AI features\nopted-out-1\n"
                                              "opted-out-2\n")
    client = await start({"litellm_settings": {
        "callbacks": [], "blocked_user_list": blocked if listed == "list" else "blocked.txt"}})
    for user in blocked:
        resp = await client.post("/v1/chat/completions", json=chat(user=user), headers=ADMIN)
        assert resp.status == 400
        assert (await resp.json())["error"]["details"]["error"] == (
            f"User blocked from making LLM API Calls. User={user}")
    resp = await client.post("/v1/chat/completions", json=chat(user="someone"), headers=ADMIN)
    assert resp.status == 200
    # The API cannot lift a block the config imposes, and says so.
    body = await admin_post(client, "/customer/unblock", {"user_ids": ["opted-out-1"]})
    assert body["still_blocked_by_config"] == ["opted-out-1"]


async def test_enforced_params_have_the_reference_messages(start, fake_upstream, chat):
    client = await start({"general_settings": {
        "enforced_params": ["user", "metadata.generation_name"]}})
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    for body, param in ((chat(), "user"),
                        (chat(user="gm", metadata={}), "[metadata][generation_name]")):
        resp = await client.post("/v1/chat/completions", json=body, headers=key)
        assert resp.status == 401
        assert await resp.json() == {"error": {
            "message": f"Authentication Error, BadRequest please pass param={param} in request "
                       f"body. This is a required param",
            "type": "auth_error", "param": "None", "code": "401"}}
    assert fake_upstream.received == []
    resp = await client.post("/v1/chat/completions", headers=key, json=chat(
        user="gm", metadata={"generation_name": "prod-app"}))
    assert resp.status == 200


def by_action(rows):
    return {row["action"]: row for row in rows}


@both_databases
async def test_audit_rows_record_every_change_to_keys_and_teams(start):
    client = await start({"litellm_settings": {"store_audit_logs": True}})
    team = await admin_post(client, "/team/new", {"max_budget": 2},
                            headers={"litellm-changed-by": "109010464461339474872"})
    team_id = team["team_id"]
    key = await admin_post(client, "/key/generate", {"team_id": team_id, "models": ["gpt-4o"]})
    await admin_post(client, "/key/update", {"key": key["key"], "max_budget": 1.5})
    await admin_post(client, "/key/delete", {"keys": [key["key"]]})
    await admin_post(client, "/team/update", {"team_id": team_id, "team_alias": "renamed"})
    await admin_post(client, "/team/delete", {"team_ids": [team_id]})

    resp = await client.get("/audit/logs", params={"object_id": key["token"]}, headers=ADMIN)
    assert key["key"] not in await resp.text()
    rows = by_action(await resp.json())
    assert set(rows) == {"created", "updated", "deleted"}
    for row in rows.values():
        assert set(row) == {"id", "updated_at", "changed_by", "changed_by_api_key", "action",
                            "table_name", "object_id", "before_value", "updated_values"}
        assert (row["table_name"], row["object_id"], row["changed_by"],
                row["changed_by_api_key"]) == ("LiteLLM_VerificationToken", key["token"],
                                               "master_key", None)
        assert uuid.UUID(row["id"])
        assert row["updated_at"].endswith("+00:00")
    assert rows["created"]["before_value"] is None
    assert rows["created"]["updated_values"]["models"] == ["gpt-4o"]
    assert rows["updated"]["before_value"]["max_budget"] is None
    assert rows["updated"]["updated_values"] == {"max_budget": 1.5}
    assert rows["deleted"]["before_value"]["max_budget"] == 1.5

    rows = by_action(await admin_get(client, "/audit/logs", object_id=team_id))
    assert set(rows) == {"created", "updated", "deleted"}
    assert {row["table_name"] for row in rows.values()} == {"LiteLLM_TeamTable"}
    created = rows["created"]
    assert created["changed_by"] == "109010464461339474872"
    assert (created["before_value"], created["updated_values"]["max_budget"],
            created["updated_values"]["team_id"]) == (None, 2.0, team_id)
    assert rows["updated"]["updated_values"] == {"team_alias": "renamed"}
    assert rows["deleted"]["before_value"]["team_alias"] == "renamed"


async def test_no_audit_rows_unless_switched_on(start):
    client = await start()
    await admin_post(client, "/team/new", {})
    assert await admin_get(client, "/audit/logs") == []


@pytest.mark.parametrize("path,params,param", [
    ("/audit/logs", {"limit": "0"}, "limit"),
    ("/spend/logs", {"limit": "lots"}, "limit"),
])
async def test_bad_report_queries_are_a_422(start, path, params, param):
    client = await start()
    resp = await client.get(path, params=params, headers=ADMIN)
    assert resp.status == 422
    [problem] = (await resp.json())["detail"]
    assert problem["loc"] == ["query", param]


@pytest.mark.parametrize("body,loc", [
    ({"user_ids": "user-7"}, ["body", "user_ids"]),
    ({"user_ids": []}, ["body", "user_ids"]),
    ({"user_ids": [""]}, ["body", "user_ids", 0]),
    ({}, ["body", "user_ids"]),
])
async def test_bad_block_requests_are_a_422(start, body, loc):
    client = await start()
    resp = await client.post("/customer/block", json=body, headers=ADMIN)
    assert resp.status == 422
    [problem] = (await resp.json())["detail"]
    assert problem["loc"] == loc
