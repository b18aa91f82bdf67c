"""Who may call which admin route: the master key is a proxy admin; a key acts with its
user's role -- a viewer reads everything and changes nothing, an internal user reads what is
their own, a team admin manages their team's members, and a key without a user row only uses
models and reads itself."""

import pytest
from admin_kit import ADMIN, admin_get, admin_post, bearer


async def user_key(client, user_id, role=None, **fields):
    body = {"user_id": user_id, **({"user_role": role} if role else {}), **fields}
    return bearer((await admin_post(client, "/user/new", body))["key"])


async def test_user_new_makes_a_user_with_a_working_key_and_user_info_shows_it(start, chat):
    client = await start()
    made = await admin_post(client, "/user/new", {"user_id": "ada", "user_email": "a@x.io",
                                                  "max_budget": 5.0, "key_alias": "ada-key"})
    assert (made["user_id"], made["user_email"], made["max_budget"], made["key_alias"]) == (
        "ada", "a@x.io", 5.0, "ada-key")
    assert made["key"].startswith("sk-") and made["token"] is None
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 200
    info = await admin_get(client, "/user/info", user_id="ada")
    assert info["user_info"]["user_email"] == "a@x.io"
    assert [k["key_alias"] for k in info["keys"]] == ["ada-key"]
    # Again with the same id: no error, the row is kept and another key is issued.
    again = await admin_post(client, "/user/new", {"user_id": "ada", "max_budget": 1.0})
    assert again["max_budget"] == 5.0 and again["key"] != made["key"]
    # Emails are unique, whatever their case.
    resp = await client.post("/user/new", json={"user_email": "A@X.io"}, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == (
        "{'error': 'User with email A@X.io already exists'}")
    # auto_create_key: false makes no key.
    quiet = await admin_post(client, "/user/new", {"user_id": "quiet", "auto_create_key": False})
    assert quiet["key"] == ""


async def test_user_update_upserts_and_drops_empty_values_and_delete_takes_their_keys(start,
                                                                                   chat):
    client = await start()
    made = await admin_post(client, "/user/new", {"user_id": "bo", "user_alias": "Bo"})
    updated = await admin_post(client, "/user/update", {"user_id": "bo", "max_budget": 3.0,
                                                        "user_alias": None, "models": []})
    assert (updated["data"]["max_budget"], updated["data"]["user_alias"]) == (3.0, "Bo")
    created = await admin_post(client, "/user/update", {"user_id": "new-one",
                                                        "user_role": "internal_user_viewer"})
    assert created["data"]["user_role"] == "internal_user_viewer"

    assert await admin_post(client, "/user/delete", {"user_ids": ["bo"]}) == 1
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(made["key"]))
    assert resp.status == 401
    resp = await client.post("/user/delete", json={"user_ids": ["bo"]}, headers=ADMIN)
    assert resp.status == 404
    assert await resp.json() == {"detail": {"error": "User not found, passed user_id=bo"}}


async def test_user_list_filters_sorts_and_pages(start):
    client = await start()
    for user_id, role in (("u1", "internal_user"), ("u2", "proxy_admin_viewer"),
                          ("u3", "internal_user")):
        await admin_post(client, "/user/new", {"user_id": user_id, "user_role": role,
                                               "user_email": f"{user_id}@corp.io"})
    listed = await admin_get(client, "/user/list", role="internal_user", sort_by="user_id",
                             page_size="1", page="2")
    assert ([u["user_id"] for u in listed["users"]], listed["total"],
            listed["total_pages"]) == (["u3"], 2, 2)
    assert listed["users"][0]["key_count"] == 1
    listed = await admin_get(client, "/user/list", user_email="U2@")
    assert [u["user_id"] for u in listed["users"]] == ["u2"]


async def test_a_viewer_reads_but_every_write_is_403(start):
    client = await start()
    viewer = await user_key(client, "vic", "proxy_admin_viewer")
    for path, params in (("/user/list", {}), ("/customer/list", {}), ("/budget/list", {}),
                         ("/organization/list", {}), ("/user/info", {"user_id": "vic"})):
        resp = await client.get(path, params=params, headers=viewer)
        assert resp.status == 200, (path, await resp.text())
    for path, body in (("/team/new", {}), ("/user/new", {}), ("/customer/new", {"user_id": "c"}),
                       ("/budget/new", {}), ("/customer/block", {"user_ids": ["c"]})):
        resp = await client.post(path, json=body, headers=viewer)
        assert resp.status == 403, path
        assert (await resp.json())["error"]["message"] == (
            f"user not allowed to access this route, role= proxy_admin_viewer. Trying to "
            f"access: {path}")


@pytest.mark.parametrize("role", ["internal_user", "internal_user_viewer", None])
async def test_others_get_the_proxy_admin_401_with_their_user_id_masked(start, role):
    client = await start()
    if role is None:  # a key with no user row
        key = bearer((await admin_post(client, "/key/generate",
                                       {"user_id": "no-row-user-42"}))["key"])
    else:
        key = await user_key(client, "someone-long-99", role)
    resp = await client.post("/team/new", json={}, headers=key)
    assert resp.status == 401
    shown_role = role or "unknown"
    masked = "no-row******42" if role is None else "someon*******99"
    assert await resp.json() == {"error": {
        "message": f"Authentication Error, Only proxy admin can be used to generate, delete, "
                   f"update info for new keys/users/teams. Route=/team/new. Your "
                   f"role={shown_role}. Your user_id={masked}",
        "type": "auth_error", "param": "None", "code": "401"}}
    resp = await client.get("/customer/list", headers=key)
    assert resp.status == 401
    assert await resp.json() == {"detail": {
        "error": f"Admin-only endpoint. Your user role={shown_role}"}}


async def test_an_internal_user_reads_their_own_user_and_team_only(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "mine"})
    await admin_post(client, "/team/new", {"team_id": "theirs"})
    me = bearer((await admin_post(client, "/user/new", {"user_id": "me",
                                                       "teams": ["mine"]}))["key"])
    info = await (await client.get("/user/info", headers=me)).json()
    assert info["user_id"] == "me" and [t["team_id"] for t in info["teams"]] == ["mine"]
    resp = await client.get("/user/info", params={"user_id": "other"}, headers=me)
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "key not allowed to access this user's info. user_id=other, key's user_id=me")

    assert (await client.get("/team/info", params={"team_id": "mine"}, headers=me)).status \
        == 200
    resp = await client.get("/team/info", params={"team_id": "theirs"}, headers=me)
    assert resp.status == 403
    assert (await resp.json())["error"]["message"] == (
        "{'error': 'User=me not authorized to access this team=theirs'}")

    resp = await client.get("/team/list", headers=me)
    assert resp.status == 401
    assert await resp.json() == {"detail": {"error": "Only admin users can query all "
                                                     "teams/other teams. Your user "
                                                     "role=internal_user"}}
    teams = await (await client.get("/team/list", params={"user_id": "me"}, headers=me)).json()
    assert [t["team_id"] for t in teams] == ["mine"]

    # Their own contact details they may change; their budget, role or anyone else not.
    resp = await client.post("/user/update", json={"user_id": "me", "user_alias": "Me"},
                             headers=me)
    assert resp.status == 200
    for body in ({"user_id": "me", "user_role": "proxy_admin"},
                 {"user_id": "other", "user_alias": "x"}):
        resp = await client.post("/user/update", json=body, headers=me)
        assert resp.status == 403, body


async def test_a_proxy_admin_users_key_is_an_admin(start):
    client = await start()
    boss = await user_key(client, "boss", "proxy_admin")
    resp = await client.post("/team/new", json={"team_id": "by-boss"}, headers=boss)
    assert resp.status == 200
    # The caller joins their new team as its admin.
    assert {"user_id": "boss", "user_email": None, "role": "admin"} in (
        await resp.json())["members_with_roles"]
