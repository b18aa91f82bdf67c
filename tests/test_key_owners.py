"""Keys managed by their owners: an internal user makes, changes, regenerates, deletes and
lists their own keys (and their team's, as its admin), reads keys of their own and of their
team; a viewer reads every key and writes none."""

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer
from gatehouse.config import ConfigError


async def user_key(client, user_id, role=None):
    body = {"user_id": user_id, **({"user_role": role} if role else {})}
    return bearer((await admin_post(client, "/user/new", body))["key"])


async def post(client, path, body, headers):
    resp = await client.post(path, json=body, headers=headers)
    return resp.status, await resp.json()


def message(answer):
    return answer["error"]["message"]


async def test_an_internal_user_makes_keys_for_themselves_only(start, chat):
    client = await start()
    ada = await user_key(client, "ada", "internal_user")
    status, own = await post(client, "/key/generate", {"user_id": "ada"}, ada)
    assert (status, own["user_id"]) == (200, "ada")
    # No user_id: the key is theirs.
    status, unnamed = await post(client, "/key/generate", {}, ada)
    assert (status, unnamed["user_id"]) == (200, "ada")
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(unnamed["key"]))
    assert resp.status == 200

    status, answer = await post(client, "/key/generate", {"user_id": "bob"}, ada)
    assert status == 403
    assert message(answer) == ("User can only create keys for themselves. Got user_id=bob, "
                               "Your ID=ada")


async def test_an_internal_user_changes_and_deletes_their_own_keys_only(start):
    client = await start()
    ada = await user_key(client, "ada", "internal_user")
    own = await admin_post(client, "/key/generate", {"user_id": "ada"})
    other = await admin_post(client, "/key/generate", {"user_id": "bob", "key_alias": "bobs"})

    status, _ = await post(client, "/key/update", {"key": own["key"], "max_budget": 2.0}, ada)
    assert status == 200
    status, answer = await post(client, "/key/update",
                                {"key": other["key"], "max_budget": 2.0}, ada)
    assert status == 403
    assert message(answer) == ("User can only create keys for themselves. Got user_id=bob, "
                               "Your ID=ada")
    status, answer = await post(client, "/key/update", {"key": own["key"], "user_id": "bob"},
                                ada)
    assert status == 403
    assert message(answer).startswith("User=bob is not allowed to update key=")
    status, _ = await post(client, "/key/regenerate", {"key": other["key"]}, ada)
    assert status == 403
    status, answer = await post(client, "/key/delete", {"keys": [other["key"]]}, ada)
    assert status == 403
    assert message(answer) == "{'error': 'You are not authorized to delete this key'}"

    # Nothing of bob's key changed.
    info = (await client.get("/key/info", params={"key": other["key"]}, headers=ADMIN))
    assert (await info.json())["info"]["max_budget"] is None

    status, regenerated = await post(client, "/key/regenerate", {"key": own["key"]}, ada)
    assert status == 200
    status, _ = await post(client, "/key/delete", {"keys": [regenerated["key"]]}, ada)
    assert status == 200


async def test_key_list_is_the_callers_own_keys(start):
    client = await start()
    ada = await user_key(client, "ada", "internal_user")
    await admin_post(client, "/key/generate", {"user_id": "bob"})
    resp = await client.get("/key/list", headers=ada, params={"return_full_object": "true"})
    assert resp.status == 200
    assert {key["user_id"] for key in (await resp.json())["keys"]} == {"ada"}
    resp = await client.get("/key/list", headers=ada, params={"user_id": "bob"})
    assert resp.status == 403
    assert message(await resp.json()) == "You are not authorized to check another user's keys"
    # A key with no user has no keys of its own to list.
    bare = bearer((await admin_post(client, "/key/generate", {}))["key"])
    resp = await client.get("/key/list", headers=bare)
    assert resp.status == 403


async def test_key_info_of_the_same_user_or_team_only(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "crew", "members_with_roles": [
        {"role": "user", "user_id": "ada"}]})
    ada = await user_key(client, "ada", "internal_user")
    mine = await admin_post(client, "/key/generate", {"user_id": "ada"})
    crews = await admin_post(client, "/key/generate", {"team_id": "crew"})
    strangers = await admin_post(client, "/key/generate", {"user_id": "bob"})
    for made in (mine, crews):
        resp = await client.get("/key/info", params={"key": made["key"]}, headers=ada)
        assert resp.status == 200, await resp.text()
    for named in (strangers["key"], "sk-no-such-key"):
        resp = await client.get("/key/info", params={"key": named}, headers=ada)
        assert resp.status == 403
        assert message(await resp.json()) == ("You are not allowed to access this key's info. "
                                              "Your role=internal_user")


async def test_team_keys_need_the_team(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "crew", "members_with_roles": [
        {"role": "admin", "user_id": "boss"}, {"role": "user", "user_id": "hand"}]})
    outsider = await user_key(client, "outsider", "internal_user")
    hand = await user_key(client, "hand", "internal_user")
    boss = await user_key(client, "boss", "internal_user")

    status, answer = await post(client, "/key/generate", {"team_id": "crew"}, outsider)
    assert (status, message(answer)) == (400, "User=outsider not assigned to team=crew")
    status, answer = await post(client, "/key/generate", {"team_id": "crew"}, hand)
    assert status == 401
    assert answer["error"]["type"] == "team_member_permission_error"
    assert message(answer).startswith(
        "Team member does not have permissions for endpoint: /key/generate.")
    status, made = await post(client, "/key/generate", {"team_id": "crew"}, boss)
    assert (status, made["team_id"]) == (200, "crew")
    # The team's admin manages the team's keys.
    crews = await admin_post(client, "/key/generate", {"team_id": "crew", "user_id": "hand"})
    status, _ = await post(client, "/key/update", {"key": crews["key"], "rpm_limit": 5}, boss)
    assert status == 200


async def test_viewers_read_every_key_and_write_none(start):
    client = await start()
    viewer = await user_key(client, "eve", "proxy_admin_viewer")
    someone = await admin_post(client, "/key/generate", {"user_id": "bob"})
    resp = await client.get("/key/info", params={"key": someone["key"]}, headers=viewer)
    assert resp.status == 200
    resp = await client.get("/key/list", headers=viewer, params={"user_id": "bob"})
    assert (await resp.json())["keys"] == [someone["token"]]
    for path, body in (("/key/generate", {}), ("/key/update", {"key": someone["key"],
                                                                "max_budget": 1.0}),
                       ("/key/delete", {"keys": [someone["key"]]}),
                       ("/key/block", {"key": someone["key"]})):
        status, answer = await post(client, path, body, viewer)
        assert status == 403, path
        assert message(answer) == (f"user not allowed to access this route, role= "
                                   f"proxy_admin_viewer. Trying to access: {path}")
    # An internal user viewer makes no keys either.
    reader = await user_key(client, "rita", "internal_user_viewer")
    status, _ = await post(client, "/key/generate", {}, reader)
    assert status == 401


async def test_key_generation_settings_restrict_personal_keys(start):
    client = await start({"litellm_settings": {"key_generation_settings": {
        "personal_key_generation": {"allowed_user_roles": ["proxy_admin"],
                                    "required_params": ["tags"]}}}})
    ada = await user_key(client, "ada", "internal_user")
    status, answer = await post(client, "/key/generate", {}, ada)
    assert (status, message(answer)) == (
        400, "Personal key creation has been restricted by admin. Allowed "
             "roles=['proxy_admin']. Your role=internal_user")
    # Admins are held to the required params too.
    status, answer = await post(client, "/key/generate", {}, ADMIN)
    assert (status, message(answer)) == (400, "Required param tags not in data")
    status, made = await post(client, "/key/generate", {"tags": ["billing"]}, ADMIN)
    assert status == 200, made


async def test_key_generation_settings_restrict_team_keys(start):
    client = await start({"litellm_settings": {"key_generation_settings": {
        "team_key_generation": {"allowed_team_member_roles": ["admin"],
                                "required_params": ["key_alias"]}}}})
    await admin_post(client, "/team/new", {
        "team_id": "crew", "team_member_permissions": ["/key/generate"],
        "members_with_roles": [{"role": "admin", "user_id": "boss"},
                               {"role": "user", "user_id": "hand"}]})
    boss = await user_key(client, "boss", "internal_user")
    hand = await user_key(client, "hand", "internal_user")
    status, answer = await post(client, "/key/generate",
                                {"team_id": "crew", "key_alias": "h"}, hand)
    assert (status, message(answer)) == (
        400, "Team member role user not in allowed_team_member_roles=['admin']")
    status, answer = await post(client, "/key/generate", {"team_id": "crew"}, boss)
    assert (status, message(answer)) == (400, "Required param key_alias not in data")
    status, made = await post(client, "/key/generate", {"team_id": "crew", "key_alias": "b"},
                              boss)
    assert status == 200, made
    status, answer = await post(client, "/key/generate", {"team_id": "ghost"}, boss)
    assert (status, message(answer)) == (
        400, "Unable to find team object in database. Team ID: ghost")
    # Proxy admins make team keys whatever the settings say.
    status, _ = await post(client, "/key/generate", {"team_id": "crew"}, ADMIN)
    assert status == 200


@pytest.mark.parametrize("settings,needle", [
    ({"personal_key_generation": {"allowed_user_role": ["proxy_admin"]}}, "allowed_user_role"),
    ({"team_key_generation": {"required_params": ["tag"]}}, "'tag' is not a field"),
])
async def test_misspelt_key_generation_settings_stop_the_start(start, settings, needle):
    with pytest.raises(ConfigError) as err:
        await start({"litellm_settings": {"key_generation_settings": settings}})
    assert needle in str(err.value)


async def test_key_list_by_organization_team_admin_and_maker(start):
    client = await start()
    org = (await admin_post(client, "/organization/new", {"organization_alias": "acme"}))[
        "organization_id"]
    await admin_post(client, "/team/new", {"team_id": "red", "organization_id": org,
                                           "members_with_roles": [
                                               {"role": "admin", "user_id": "boss"}]})
    await admin_post(client, "/team/new", {"team_id": "blue"})
    boss = await user_key(client, "boss", "internal_user")

    async def boss_lists(**params):
        resp = await client.get("/key/list", headers=boss, params=params)
        assert resp.status == 200, await resp.text()
        return set((await resp.json())["keys"])
    # The key /user/new made for them.
    first = await boss_lists()
    red = await admin_post(client, "/key/generate", {"team_id": "red"})
    blue = await admin_post(client, "/key/generate", {"team_id": "blue"})
    own = await admin_post(client, "/key/generate", {"user_id": "boss"})
    status, made_by_boss = await post(client, "/key/generate", {}, boss)
    assert status == 200

    listed = await admin_get(client, "/key/list", organization_id=org)
    assert (listed["keys"], listed["total_count"]) == ([red["token"]], 1)
    listed = await admin_get(client, "/key/list", organization_id=org, team_id="blue")
    assert listed["keys"] == []

    assert await boss_lists() == {*first, own["token"], made_by_boss["token"]}
    # The keys of the teams they administer, on request.
    assert await boss_lists(include_team_keys="true") == {
        *first, own["token"], made_by_boss["token"], red["token"]}
    assert blue["token"] not in await boss_lists(include_team_keys="true")

    # Keys an admin made for someone else show under the maker with include_created_by_keys.
    for_hand = await admin_post(client, "/key/generate", {"user_id": "hand"})
    listed = await admin_get(client, "/key/list", user_id="default_user_id",
                             include_created_by_keys="true")
    assert for_hand["token"] in listed["keys"]
    listed = await admin_get(client, "/key/list", user_id="default_user_id")
    assert for_hand["token"] not in listed["keys"]

    resp = await client.get("/key/list", headers=boss, params={"team_id": "blue"})
    assert resp.status == 403
    assert message(await resp.json()) == "You are not authorized to check this team's keys"
    resp = await client.get("/key/list", headers=boss, params={"organization_id": org})
    assert resp.status == 403
    assert message(await resp.json()) == ("You are not authorized to check this "
                                          "organization's keys")


async def test_a_non_admin_moves_keys_only_into_teams_they_run(start):
    client = await start()
    for team, members in (("crew", [("admin", "ada")]), ("crew2", [("admin", "ada")]),
                          ("locked", [("user", "ada")])):
        await admin_post(client, "/team/new", {"team_id": team, "members_with_roles": [
            {"role": role, "user_id": user} for role, user in members]})
    ada = await user_key(client, "ada", "internal_user")
    own = await admin_post(client, "/key/generate", {"user_id": "ada"})
    status, moved = await post(client, "/key/update", {"key": own["key"], "team_id": "crew"},
                               ada)
    assert (status, moved["team_id"]) == (200, "crew")
    theirs = await admin_post(client, "/key/generate", {"team_id": "crew",
                                                        "user_id": "outsider"})
    for key, team, status, words in (
            (own, "locked", 403, "User=ada is not a Proxy Admin or Team Admin for team=locked. "
                                 "Please ask your Proxy Admin to allow this action under "
                                 "'Member Permissions' for this team."),
            (own, "ghost", 400, "Team not found for team_id=ghost. Non-admin users cannot set "
                                "keys to non-existent teams."),
            # A team key of someone outside the other team stays where it is.
            (theirs, "crew2", 403, "User=outsider is not a member of the team=crew2. Check "
                                   "team members via `/team/info`.")):
        answer = await post(client, "/key/update", {"key": key["key"], "team_id": team}, ada)
        assert answer == (status, answer[1]) and message(answer[1]) == words
    # Proxy admins move any key anywhere.
    status, _ = await post(client, "/key/update", {"key": theirs["key"], "team_id": "ghost"},
                           ADMIN)
    assert status == 200


SPEND_GRANT = ("Only a proxy admin may set or change a key's permissions.get_spend_routes: it "
               "opens every caller's spend logs, prompts included")


async def test_only_a_proxy_admin_opens_the_spend_routes_to_a_key(start):
    client = await start()
    ada = await user_key(client, "ada", "internal_user")
    own = await admin_post(client, "/key/generate", {"user_id": "ada"})
    grant = {"permissions": {"get_spend_routes": True}}
    for path, body in (("/key/generate", grant), ("/key/update", {"key": own["key"], **grant}),
                       ("/key/regenerate", {"key": own["key"], **grant})):
        status, answer = await post(client, path, body, ada)
        assert status == 403, (path, answer)
        assert answer["error"]["type"] == "auth_error" and message(answer) == SPEND_GRANT
    # Refused, the key reads no one's spend logs.
    resp = await client.get("/spend/logs", headers=bearer(own["key"]))
    assert resp.status == 401
    info = await admin_get(client, "/key/info", key=own["key"])
    assert info["info"]["permissions"] == {}

    # A proxy admin's grant works, and its holder cannot take it further or away.
    status, _ = await post(client, "/key/update", {"key": own["key"], **grant}, ADMIN)
    assert status == 200
    assert (await client.get("/spend/logs", headers=bearer(own["key"]))).status == 200
    status, answer = await post(client, "/key/update", {
        "key": own["key"], "permissions": {}}, ada)
    assert (status, message(answer)) == (403, SPEND_GRANT)
    # Other permissions that switch nothing off stay the owner's to set.
    status, _ = await post(client, "/key/update", {"key": own["key"], "permissions": {
        "get_spend_routes": True, "enable_llm_guard_check": True}}, ada)
    assert status == 200


SWITCH_OFF = ("Only a proxy admin, or an admin of the key's team, may set key permissions that "
              "switch a guardrail off: hide_secrets")
HIDE_SECRETS = {"guardrails": [{"guardrail_name": "mask", "litellm_params": {
    "guardrail": "hide-secrets", "mode": "pre_call", "default_on": True}}]}


async def test_only_admins_switch_a_guardrail_off_through_key_permissions(start, chat):
    client = await start(HIDE_SECRETS, load=["secrets"])
    await admin_post(client, "/team/new", {"team_id": "crew", "members_with_roles": [
        {"role": "admin", "user_id": "boss"}, {"role": "user", "user_id": "ada"}]})
    await admin_post(client, "/team/new", {
        "team_id": "locked", "metadata": {"guardrails": {"modify_guardrails": False}},
        "members_with_roles": [{"role": "admin", "user_id": "boss"}]})
    ada = await user_key(client, "ada", "internal_user")
    boss = await user_key(client, "boss", "internal_user")
    own = await admin_post(client, "/key/generate", {"user_id": "ada"})
    off = {"permissions": {"hide_secrets": False}}
    for path, body in (("/key/generate", off), ("/key/update", {"key": own["key"], **off}),
                       ("/key/regenerate", {"key": own["key"], **off})):
        status, answer = await post(client, path, body, ada)
        assert status == 403, (path, answer)
        assert answer["error"]["type"] == "auth_error" and message(answer) == SWITCH_OFF
    # The guardrail still runs on the key's calls.
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(own["key"]))
    assert resp.status == 200 and resp.headers["x-gatehouse-applied-guardrails"] == "mask"

    # A team's admin may, on the team's keys, unless the team's guardrails are locked.
    status, made = await post(client, "/key/generate", {"team_id": "crew", **off}, boss)
    assert status == 200, made
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200 and "x-gatehouse-applied-guardrails" not in resp.headers
    status, answer = await post(client, "/key/generate", {"team_id": "locked", **off}, boss)
    assert (status, message(answer)) == (403, SWITCH_OFF)

    # Taking away a switch an admin turned on is switching it off too.
    await admin_post(client, "/key/update", {"key": own["key"], "permissions": {
        "enable_llm_guard_check": True}})
    status, answer = await post(client, "/key/update", {"key": own["key"], "permissions": {}},
                                ada)
    assert (status, message(answer)) == (403, SWITCH_OFF.replace("hide_secrets",
                                                                 "enable_llm_guard_check"))

    # The team admin's exemption stays in the team: the key cannot take it to a locked team
    # or out of the team.
    for team_id in ("locked", None):
        status, answer = await post(client, "/key/update", {"key": made["key"],
                                                            "team_id": team_id}, boss)
        assert (status, message(answer)) == (403, SWITCH_OFF), team_id
    info = await admin_get(client, "/key/info", key=made["key"])
    assert info["info"]["team_id"] == "crew"
