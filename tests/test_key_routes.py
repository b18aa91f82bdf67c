"""The key routes as LiteLLM's clients call them: every /key/generate field and the response
body it gets, null and unknown fields, aliases, listing, deleting by alias, regenerating,
blocking, and a key reading itself."""

import hashlib
import logging
import time
from datetime import datetime

import pytest
from admin_kit import ADMIN, PRICED, admin_get, admin_post, bearer, both_databases
from gatehouse.app import GATEWAY
from gatehouse.config import ConfigError
from gatehouse.access import durations

RESPONSE_FIELDS = {
    "key", "key_name", "token", "token_id", "key_alias", "expires", "models", "aliases", "config",
    "spend", "max_budget", "budget_duration", "budget_id", "user_id", "team_id",
    "max_parallel_requests", "tpm_limit", "rpm_limit", "metadata", "allowed_cache_controls",
    "permissions", "model_max_budget", "blocked", "allowed_routes", "litellm_budget_table",
    "created_by", "updated_by", "created_at", "updated_at", "duration", "model_rpm_limit",
    "model_tpm_limit", "guardrails", "prompts", "tags", "enforced_params",
    "allowed_passthrough_routes", "rpm_limit_type", "tpm_limit_type", "object_permission"}


@both_databases
async def test_generate_answers_litellms_response_body(start):
    client = await start()
    made = await admin_post(client, "/key/generate", {
        "models": ["gpt-4o"], "max_budget": 10.0, "budget_duration": "30d",
        "tags": ["a"], "model_rpm_limit": {"gpt-4o": 5}, "aliases": {"fast": "gpt-4o"},
        "config": {"x": 1}, "spend": 1.5, "max_parallel_requests": 3, "soft_budget": 8.0,
        "allowed_cache_controls": ["no-cache"], "object_permission": {"vector_stores": []},
        "model_max_budget": {"gpt-4o": {"budget_limit": 0.5, "time_period": "30d"}}})
    assert RESPONSE_FIELDS <= set(made)
    secret = made["key"]
    assert secret.startswith("sk-") and len(secret) == 3 + 22
    assert made["token"] == made["token_id"] == hashlib.sha256(secret.encode()).hexdigest()
    assert made["key_name"] == f"sk-...{secret[-4:]}"
    # Moved into metadata, as LiteLLM keeps them; null at the top level.
    assert made["metadata"] == {"tags": ["a"], "model_rpm_limit": {"gpt-4o": 5}}
    assert (made["tags"], made["model_rpm_limit"]) == (None, None)
    assert (made["created_by"], made["updated_by"]) == ("default_user_id", "default_user_id")
    assert (made["aliases"], made["config"], made["spend"], made["max_parallel_requests"]) == (
        {"fast": "gpt-4o"}, {"x": 1}, 1.5, 3)
    assert made["model_max_budget"] == {"gpt-4o": {"budget_limit": 0.5, "time_period": "30d"}}
    created = datetime.fromisoformat(made["created_at"]).timestamp()
    assert made["budget_reset_at"] is not None
    reset = datetime.fromisoformat(made["budget_reset_at"]).timestamp()
    assert reset == durations.next_reset("30d", created)
    info = await admin_get(client, "/key/info", key=secret)
    assert info["info"]["soft_budget"] == 8.0
    assert "token" not in info["info"]


async def test_null_on_create_is_not_given_and_on_update_clears(start):
    client = await start()
    made = await admin_post(client, "/key/generate", {
        "models": None, "metadata": None, "key_alias": None, "max_budget": None,
        "blocked": None, "spend": None})
    assert (made["models"], made["metadata"], made["blocked"], made["spend"]) == (
        [], {}, False, 0.0)
    made = await admin_post(client, "/key/generate", {
        "key_alias": "to-clear", "max_budget": 5.0, "models": ["gpt-4o"],
        "metadata": {"team": "x"}, "tags": ["t"]})
    updated = await admin_post(client, "/key/update", {
        "key": made["key"], "key_alias": None, "max_budget": None, "models": None,
        "tags": None})
    assert (updated["key_alias"], updated["max_budget"], updated["models"]) == (None, None, [])
    assert updated["metadata"] == {"team": "x"}  # tags gone, the rest kept
    assert updated["updated_by"] == "default_user_id"


async def test_unknown_fields_are_ignored_and_logged_once_per_route_and_field(start, caplog):
    client = await start()
    caplog.set_level(logging.WARNING, logger="gatehouse.admin")
    for _ in range(3):
        made = await admin_post(client, "/key/generate", {"max_buget": 5, "models": ["gpt-4o"]})
        assert made["max_budget"] is None
    await admin_post(client, "/team/new", {"max_buget": 5})
    warned = [r.getMessage() for r in caplog.records if "max_buget" in r.getMessage()]
    assert len(warned) == 2
    assert "/key/generate" in warned[0] and "/team/new" in warned[1]


@both_databases
async def test_key_aliases_are_unique(start):
    client = await start()
    first = await admin_post(client, "/key/generate", {"key_alias": "billing"})
    other = await admin_post(client, "/key/generate", {"key_alias": "reports"})
    for path, body in (("/key/generate", {"key_alias": "billing"}),
                       ("/key/update", {"key": other["key"], "key_alias": "billing"})):
        resp = await client.post(path, json=body, headers=ADMIN)
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert (error["type"], error["param"]) == ("bad_request_error", "key_alias")
        assert error["message"] == ("Key with alias 'billing' already exists. Unique key "
                                    "aliases across all keys are required.")
    # A key may keep its own alias.
    await admin_post(client, "/key/update", {"key": first["key"], "key_alias": "billing"})


@both_databases
async def test_key_list_pages_filters_and_sorts(start):
    client = await start()
    made = [await admin_post(client, "/key/generate", {
        "key_alias": f"k{i}", "user_id": "lister", "spend": float(i)}) for i in range(5)]
    await admin_post(client, "/key/generate", {"user_id": "someone-else"})
    body = await admin_get(client, "/key/list", user_id="lister", size="2", page="3")
    assert (body["total_count"], body["total_pages"], body["current_page"]) == (5, 3, 3)
    assert body["keys"] == [made[0]["token"]]  # newest first by default
    body = await admin_get(client, "/key/list", user_id="lister", sort_by="spend",
                           sort_order="asc")
    assert body["keys"] == [m["token"] for m in made]
    body = await admin_get(client, "/key/list", key_alias="k3", return_full_object="true")
    assert [k["key_alias"] for k in body["keys"]] == ["k3"]
    body = await admin_get(client, "/key/list", key_hash=made[2]["key"])
    assert body["keys"] == [made[2]["token"]]


@both_databases
async def test_delete_by_key_aliases(start, chat):
    client = await start()
    made = await admin_post(client, "/key/generate", {"key_alias": "retiring"})
    kept = await admin_post(client, "/key/generate", {"key_alias": "kept"})
    body = await admin_post(client, "/key/delete", {"key_aliases": ["retiring"]})
    assert body == {"deleted_keys": ["retiring"]}
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(kept["key"]))
    assert resp.status == 200


@both_databases
@pytest.mark.parametrize("by_path", [False, True])
async def test_regenerate_replaces_the_secret_and_keeps_the_rest(start, chat, by_path):
    client = await start({"settings": {"store_audit_logs": True}})
    made = await admin_post(client, "/key/generate", {"key_alias": "rotating",
                                                      "models": ["gpt-4o"], "max_budget": 3.0})
    old = bearer(made["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=old)).status == 200
    if by_path:
        new = await admin_post(client, f"/key/{made['token']}/regenerate", {"max_budget": 4.0})
    else:
        new = await admin_post(client, "/key/regenerate", {"key": made["key"],
                                                           "max_budget": 4.0})
    assert new["key"] != made["key"] and new["key"].startswith("sk-")
    assert new["token"] is None
    assert new["token_id"] == hashlib.sha256(new["key"].encode()).hexdigest()
    assert new["key_name"] == f"sk-...{new['key'][-4:]}"
    assert (new["key_alias"], new["models"], new["max_budget"]) == (
        "rotating", ["gpt-4o"], 4.0)
    resp = await client.post("/v1/chat/completions", json=chat(), headers=old)
    assert resp.status == 401
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(new["key"]))
    assert resp.status == 200
    resp = await client.post("/key/regenerate", json={"key": new["key"], "new_key": "bad"},
                             headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"].startswith("Invalid key format.")


async def test_block_and_unblock(start, chat):
    client = await start()
    made = await admin_post(client, "/key/generate", {})
    blocked = await admin_post(client, "/key/block", {"key": made["key"]})
    assert (blocked["blocked"], blocked["token"]) == (True, made["token"])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == (
        "Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin.")
    unblocked = await admin_post(client, "/key/unblock", {"key": made["token"]})
    assert unblocked["blocked"] is False
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200


async def test_a_key_reads_itself_and_only_itself(start):
    client = await start()
    made = await admin_post(client, "/key/generate", {"key_alias": "self"})
    other = await admin_post(client, "/key/generate", {})
    resp = await client.get("/key/info", headers=bearer(made["key"]))
    assert resp.status == 200
    body = await resp.json()
    assert (body["key"], body["info"]["key_alias"]) == (made["token"], "self")
    assert made["key"] not in await resp.text()
    resp = await client.get("/key/info", params={"key": made["key"]},
                            headers=bearer(made["key"]))
    assert resp.status == 200
    resp = await client.get("/key/info", params={"key": other["token"]},
                            headers=bearer(made["key"]))
    assert resp.status == 403
    resp = await client.post("/key/health", headers=bearer(made["key"]))
    assert resp.status == 200
    assert await resp.json() == {"key": "healthy", "logging_callbacks": None}
    # A key without a user has no keys of its own to list.
    resp = await client.get("/key/list", headers=bearer(made["key"]))
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "You are not authorized to access this endpoint. No 'user_id' is associated with your "
        "API key.")


async def test_service_account_keys_need_a_team_and_have_no_user(start):
    client = await start()
    for body, words in (({}, "team_id is required for service account keys. Please specify "
                             "`team_id` in the request body."),
                        ({"team_id": "nope"}, "team_id does not exist in the database. Please "
                                              "specify a valid `team_id` in the request body.")):
        resp = await client.post("/key/service-account/generate", json=body, headers=ADMIN)
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == words
    await admin_post(client, "/team/new", {"team_id": "svc", "members_with_roles": [
        {"role": "admin", "user_id": "boss"}]})
    made = await admin_post(client, "/key/service-account/generate",
                            {"team_id": "svc", "user_id": "someone"})
    assert (made["team_id"], made["user_id"]) == ("svc", None)
    # Only proxy admins make them, not even the team's own admin.
    boss = bearer((await admin_post(client, "/user/new", {"user_id": "boss"}))["key"])
    resp = await client.post("/key/service-account/generate", json={"team_id": "svc"},
                             headers=boss)
    assert resp.status == 401
    assert (await resp.json())["error"]["message"].startswith(
        "Authentication Error, Only proxy admin can be used to generate, delete, update info "
        "for new keys/users/teams. Route=/key/service-account/generate. Your "
        "role=internal_user.")


@both_databases
async def test_a_soft_budget_makes_a_budget_row_shown_with_the_key(start):
    client = await start()
    made = await admin_post(client, "/key/generate", {"soft_budget": 0.5})
    assert made["budget_id"] is not None
    assert made["litellm_budget_table"]["budget_id"] == made["budget_id"]
    assert made["litellm_budget_table"]["soft_budget"] == 0.5
    info = (await admin_get(client, "/key/info", key=made["key"]))["info"]
    assert info["litellm_budget_table"]["soft_budget"] == 0.5
    [row] = await admin_post(client, "/budget/info", {"budgets": [made["budget_id"]]})
    assert row["soft_budget"] == 0.5
    listed = await admin_get(client, "/key/list", return_full_object="true")
    assert listed["keys"][0]["litellm_budget_table"]["soft_budget"] == 0.5

    # A key linked to a budget row shows that row, and a soft budget does not replace it.
    await admin_post(client, "/budget/new", {"budget_id": "shared", "max_budget": 7.0})
    linked = await admin_post(client, "/key/generate", {"budget_id": "shared",
                                                        "soft_budget": 0.25})
    assert linked["budget_id"] == "shared"
    assert linked["litellm_budget_table"]["max_budget"] == 7.0
    # A key without a budget row shows none; a soft budget set later makes one.
    plain = await admin_post(client, "/key/generate", {})
    assert plain["litellm_budget_table"] is None
    updated = await admin_post(client, "/key/update", {"key": plain["key"],
                                                       "soft_budget": 0.1})
    assert updated["litellm_budget_table"]["soft_budget"] == 0.1


async def test_a_budget_rows_soft_budget_warns_once_when_crossed(start, fake_upstream, chat,
                                                                 caplog):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    await admin_post(client, "/budget/new", {"budget_id": "alerting", "soft_budget": 0.015})
    made = await admin_post(client, "/key/generate", {"budget_id": "alerting"})
    caplog.set_level(logging.WARNING, logger="gatehouse.spend")
    for _ in range(3):
        resp = await client.post("/v1/chat/completions", json=chat(),
                                 headers=bearer(made["key"]))
        assert resp.status == 200  # an alert, not a limit
        await client.app[GATEWAY].call_log.drain()
    crossed = [r.getMessage() for r in caplog.records if "soft budget" in r.getMessage()]
    assert len(crossed) == 1


async def test_config_defaults_and_upper_bounds_for_new_keys(start):
    client = await start({"litellm_settings": {
        "default_key_generate_params": {"max_budget": 2.0, "models": ["gpt-4o"]},
        "upperbound_key_generate_params": {"max_budget": 5.0, "duration": "7d",
                                           "rpm_limit": 100}}})
    made = await admin_post(client, "/key/generate", {})
    assert (made["max_budget"], made["models"], made["rpm_limit"]) == (2.0, ["gpt-4o"], 100)
    assert made["expires"] is not None
    for field, value, cap in (("max_budget", 6.0, 5.0), ("duration", "8d", "7d"),
                              ("rpm_limit", 101, 100)):
        resp = await client.post("/key/generate", json={field: value}, headers=ADMIN)
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == str({
            "error": f"{field} is over max limit set in config - user_value={value}; "
                     f"max_value={cap}"})


async def test_key_type_sets_allowed_routes(start, chat):
    client = await start()
    reader = await admin_post(client, "/key/generate", {"key_type": "read_only"})
    caller = await admin_post(client, "/key/generate", {"key_type": "llm_api"})
    assert (reader["allowed_routes"], caller["allowed_routes"]) == (
        ["info_routes"], ["llm_api_routes"])
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(reader["key"]))
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "Virtual key is not allowed to call this route. Only allowed to call routes: "
        "['info_routes']. Tried to call route: /v1/chat/completions")
    assert (await client.get("/key/info", headers=bearer(reader["key"]))).status == 200
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(caller["key"]))
    assert resp.status == 200
    assert (await client.get("/key/info", headers=bearer(caller["key"]))).status == 403
    exact = await admin_post(client, "/key/generate", {"allowed_routes": ["/v1/chat/*"]})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(exact["key"]))
    assert resp.status == 200
    assert (await client.get("/v1/models", headers=bearer(exact["key"]))).status == 403


async def test_update_duration_counts_from_now_and_budget_duration_is_aligned(start):
    client = await start()
    made = await admin_post(client, "/key/generate", {})
    before = time.time()
    updated = await admin_post(client, "/key/update", {"key": made["key"], "duration": "1h",
                                                       "budget_duration": "1d"})
    expires = datetime.fromisoformat(updated["expires"]).timestamp()
    assert before + 3600 <= expires <= time.time() + 3600
    reset = datetime.fromisoformat(updated["budget_reset_at"]).timestamp()
    assert reset in (durations.next_reset("1d", before), durations.next_reset("1d", time.time()))


async def test_a_temporary_budget_increase_lets_a_spent_key_call_until_it_expires(start, chat):
    client = await start()
    made = await admin_post(client, "/key/generate", {"max_budget": 1.0, "spend": 1.0})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 400
    updated = await admin_post(client, "/key/update", {
        "key": made["key"], "temp_budget_increase": 2.0,
        "temp_budget_expiry": "2999-01-01T00:00:00+00:00"})
    assert updated["metadata"]["temp_budget_increase"] == 2.0
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200
    await admin_post(client, "/key/update", {
        "key": made["key"], "temp_budget_increase": 2.0,
        "temp_budget_expiry": "2000-01-01T00:00:00+00:00"})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 400


@both_databases
async def test_setting_spend_through_update_applies_to_the_next_call(start, fake_upstream,
                                                                     chat):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    made = await admin_post(client, "/key/generate", {"max_budget": 0.001})
    key = bearer(made["key"])
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200
    await client.app[GATEWAY].call_log.drain()
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 400
    await admin_post(client, "/key/update", {"key": made["key"], "spend": 0})
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200


async def test_guaranteed_throughput_keys_cannot_be_promised_more_than_their_team(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "tp", "rpm_limit": 100})
    first = await admin_post(client, "/key/generate", {
        "team_id": "tp", "rpm_limit": 60, "rpm_limit_type": "guaranteed_throughput"})
    assert first["metadata"]["rpm_limit_type"] == "guaranteed_throughput"
    resp = await client.post("/key/generate", json={
        "team_id": "tp", "rpm_limit": 50, "rpm_limit_type": "guaranteed_throughput"},
        headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == (
        "Allocated RPM limit=60 + Key RPM limit=50 is greater than team RPM limit=100")
    # Best effort is not a promise; and a key may change its own limit within the team's.
    await admin_post(client, "/key/generate", {"team_id": "tp", "rpm_limit": 50,
                                               "rpm_limit_type": "best_effort_throughput"})
    resp = await client.post("/key/update", json={"key": first["key"], "rpm_limit": 51},
                             headers=ADMIN)
    assert resp.status == 400  # the other key's 50 + 51 > 100
    await admin_post(client, "/key/update", {"key": first["key"], "rpm_limit": 50})


@pytest.mark.parametrize("section,params,needle", [
    ("default_key_generate_params", {"duration": "forever"}, "default_key_generate_params."
                                                             "duration"),
    ("upperbound_key_generate_params", {"max_budget": "lots"}, "upperbound_key_generate_params."
                                                               "max_budget"),
])
async def test_unusable_key_generate_params_stop_the_start(start, section, params, needle):
    with pytest.raises(ConfigError) as err:
        await start({"litellm_settings": {section: params}})
    assert needle in str(err.value)


@both_databases
async def test_a_nul_in_a_key_named_in_the_path_is_refused(start):
    client = await start()
    resp = await client.post("/key/sk-a%00b/regenerate", headers=ADMIN)
    assert resp.status == 400, await resp.text()
    resp = await client.post("/key/%00/regenerate", headers=ADMIN)
    assert resp.status == 400, await resp.text()
