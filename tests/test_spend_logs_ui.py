"""The request log the admin UI's Logs page reads: ``GET /spend/logs/ui`` pages and filters the
calls in the database (LiteLLM's filters, and ours for guardrail verdicts), ``GET
/spend/logs/ui/{request_id}`` shows one call with every guardrail's record; an internal user
sees only the calls of their own keys."""

from datetime import UTC, datetime, timedelta

import pytest
from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer, both_databases, settle
from doubles import PLUGINS, guardrail

GUARDRAILS = [guardrail("blocker", block_word="forbidden", default_on=True),
              guardrail("watcher", block_word="plan", default_on=True, enforce=False)]


async def logs_gateway(start, fake_upstream):
    return await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                        "guardrails": GUARDRAILS}, plugins=PLUGINS)


async def call(client, key, content):
    resp = await client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
    return resp.status, resp.headers["x-request-id"]


async def three_calls(client):
    """A passed call, one the blocker refused, and one the watcher would have refused; their
    key's details and request ids in that order."""
    team = await admin_post(client, "/team/new", {"team_alias": "growth"})
    key = await admin_post(client, "/key/generate", {"team_id": team["team_id"],
                                                     "key_alias": "growth-app"})
    ids = []
    for content, status in (("hello", 200), ("a forbidden word", 400), ("the plan", 200)):
        got, request_id = await call(client, key["key"], content)
        assert got == status
        ids.append(request_id)
    await settle(client)
    return team, key, ids


def ids_of(page):
    return [row["request_id"] for row in page["data"]]


@both_databases
async def test_the_log_pages_newest_first_and_filters_in_the_database(start, fake_upstream):
    client = await logs_gateway(start, fake_upstream)
    team, key, (passed, blocked, watched) = await three_calls(client)

    everything = await admin_get(client, "/spend/logs/ui")
    assert ids_of(everything) == [watched, blocked, passed]
    assert (everything["total"], everything["page"], everything["page_size"],
            everything["total_pages"]) == (3, 1, 50, 1)
    row = everything["data"][2]
    assert (row["api_key"], row["api_key_alias"], row["team_id"], row["model"],
            row["status"], row["call_type"]) == (key["token"], "growth-app", team["team_id"],
                                                 "gpt-4o", "success", "acompletion")
    assert row["spend"] > 0 and row["total_tokens"] > 0
    assert key["key"] not in str(everything)

    first = await admin_get(client, "/spend/logs/ui", page_size="2")
    second = await admin_get(client, "/spend/logs/ui", page_size="2", page="2")
    assert ids_of(first) == [watched, blocked] and ids_of(second) == [passed]
    assert first["total_pages"] == second["total_pages"] == 2

    assert ids_of(await admin_get(client, "/spend/logs/ui", status_filter="failure")) == [
        blocked]
    assert ids_of(await admin_get(client, "/spend/logs/ui", status_filter="success")) == [
        watched, passed]
    by_verdict = {status: ids_of(await admin_get(client, "/spend/logs/ui",
                                                 guardrail_status=status))
                  for status in ("guardrail_intervened", "would_have_intervened", "not_run")}
    # The blocked call never reached the watcher, which ran after the blocker.
    assert by_verdict == {"guardrail_intervened": [blocked], "would_have_intervened": [watched],
                          "not_run": [blocked]}

    for query in ({"api_key": key["key"]}, {"api_key": key["token"]},
                  {"key_alias": "growth-app"}, {"team_id": team["team_id"]},
                  {"model": "gpt-4o"}, {"request_id": passed}):
        expected = [passed] if "request_id" in query else [watched, blocked, passed]
        assert ids_of(await admin_get(client, "/spend/logs/ui", **query)) == expected, query
    for query in ({"key_alias": "someone-else"}, {"team_id": "t-none"}, {"model": "gpt-5"},
                  {"min_spend": "1000"}, {"user_id": "nobody"}, {"end_user": "nobody"}):
        assert (await admin_get(client, "/spend/logs/ui", **query))["total"] == 0, query
    assert ids_of(await admin_get(client, "/spend/logs/ui", max_spend="0")) == [blocked]

    now = datetime.now(UTC)
    today, tomorrow = now.date().isoformat(), (now + timedelta(days=1)).date().isoformat()
    assert (await admin_get(client, "/spend/logs/ui", start_date=today,
                            end_date=today))["total"] == 3
    assert (await admin_get(client, "/spend/logs/ui", start_date=tomorrow))["total"] == 0
    litellm_style = (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    assert (await admin_get(client, "/spend/logs/ui", end_date=litellm_style))["total"] == 0


@both_databases
async def test_one_call_shows_its_guardrails_timings_and_error(start, fake_upstream):
    client = await logs_gateway(start, fake_upstream)
    _, key, (passed, blocked, watched) = await three_calls(client)

    shown = await admin_get(client, f"/spend/logs/ui/{blocked}")
    assert shown["status"] == "failure"
    assert shown["metadata"]["error_information"]["error_code"] == "400"
    assert "Probe blocker saw forbidden" in shown["metadata"]["error_information"][
        "error_message"]
    runs = {run["guardrail_name"]: run for run in shown["metadata"]["guardrail_information"]}
    assert runs["blocker"]["guardrail_status"] == "guardrail_intervened"
    assert runs["blocker"]["guardrail_mode"] == "pre_call"
    assert runs["blocker"]["duration"] >= 0
    assert runs["watcher"]["guardrail_status"] == "not_run"
    assert "blocker" in runs["watcher"]["status_reason"]
    # Without store_prompts_in_spend_logs the text of the call is not kept.
    assert shown["messages"] is None and shown["response"] is None
    assert shown["startTime"] <= shown["endTime"]

    watched_row = await admin_get(client, f"/spend/logs/ui/{watched}")
    [watcher] = [run for run in watched_row["metadata"]["guardrail_information"]
                 if run["guardrail_name"] == "watcher"]
    assert (watcher["guardrail_status"], watcher["enforced"]) == ("would_have_intervened",
                                                                  False)
    assert "error_information" not in watched_row["metadata"]

    resp = await client.get("/spend/logs/ui/no-such-call", headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["error"]["param"] == "request_id"


@both_databases
async def test_with_store_prompts_one_call_shows_its_request_and_reply_text(start, fake_upstream):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "guardrails": GUARDRAILS,
                          "general_settings": {"store_prompts_in_spend_logs": True}},
                         plugins=PLUGINS)
    _, _, (passed, blocked, _) = await three_calls(client)

    shown = await admin_get(client, f"/spend/logs/ui/{passed}")
    assert shown["messages"] == [{"role": "user", "content": "hello"}]
    assert shown["response"]["choices"][0]["message"]["role"] == "assistant"
    # A refused call kept its request; it got no reply, which is not "not stored".
    shown = await admin_get(client, f"/spend/logs/ui/{blocked}")
    assert shown["messages"] == [{"role": "user", "content": "a forbidden word"}]
    assert shown["response"] == {}


@both_databases
async def test_an_internal_user_sees_only_the_calls_of_their_own_keys(start, fake_upstream):
    client = await logs_gateway(start, fake_upstream)
    keys = {}
    for user_id, role in (("ivy", "internal_user"), ("otto", "internal_user"),
                          ("vic", "proxy_admin_viewer")):
        keys[user_id] = (await admin_post(client, "/user/new", {
            "user_id": user_id, "user_role": role}))["key"]
    ivy_call = (await call(client, keys["ivy"], "hello"))[1]
    otto_call = (await call(client, keys["otto"], "hello"))[1]
    await settle(client)

    async def seen(who, **query):
        resp = await client.get("/spend/logs/ui", params=query, headers=bearer(keys[who]))
        assert resp.status == 200, await resp.text()
        return ids_of(await resp.json())

    assert await seen("ivy") == [ivy_call]
    # Asking for someone else's calls by name finds none of them.
    assert await seen("ivy", api_key=keys["otto"]) == []
    assert await seen("ivy", user_id="otto") == []
    assert await seen("otto") == [otto_call]
    assert await seen("vic") == [otto_call, ivy_call]

    resp = await client.get(f"/spend/logs/ui/{otto_call}", headers=bearer(keys["ivy"]))
    assert resp.status == 404
    resp = await client.get(f"/spend/logs/ui/{ivy_call}", headers=bearer(keys["ivy"]))
    assert resp.status == 200 and (await resp.json())["request_id"] == ivy_call


@pytest.mark.parametrize("query, status, param", [
    ({"status_filter": "maybe"}, 422, None),
    ({"guardrail_status": "blocked-ish"}, 422, None),
    ({"page_size": "1000"}, 422, None),
    ({"page": "0"}, 422, None),
    ({"min_spend": "nan"}, 422, None),
    ({"start_date": "yesterday"}, 400, "start_date"),
    ({"end_date": "2024-13-45"}, 400, "end_date"),
])
async def test_bad_filters_are_client_errors_naming_the_parameter(start, fake_upstream, query,
                                                                  status, param):
    client = await logs_gateway(start, fake_upstream)
    resp = await client.get("/spend/logs/ui", params=query, headers=ADMIN)
    assert resp.status == status, await resp.text()
    body = await resp.json()
    if status == 422:
        assert body["detail"][0]["loc"] == ["query", next(iter(query))]
    else:
        assert body["error"]["param"] == param
