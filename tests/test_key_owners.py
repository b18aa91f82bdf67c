"""Keys managed by their owners: an internal user makes, changes, regenerates, deletes and
lists their own keys (and their team's, as its admin), reads keys of their own and of their
team; a viewer reads every key and writes none."""

from admin_kit import ADMIN, admin_post, bearer


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
