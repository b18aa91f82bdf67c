"""Team members, budgets and organizations through the admin API: members get user rows and
membership rows, a team admin manages their own team and nothing else, budgets are shared rows
that bind what links to them, and a team moved into an organization must fit inside it."""

from admin_kit import ADMIN, admin_get, admin_post, bearer, both_databases

from gatehouse.app import GATEWAY


async def test_member_add_update_delete_keep_users_and_memberships_in_step(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "t1"})
    added = await admin_post(client, "/team/member_add", {
        "team_id": "t1", "member": {"role": "user", "user_id": "m1"},
        "max_budget_in_team": 2.0})
    assert {"user_id": "m1", "user_email": None, "role": "user"} in added["members_with_roles"]
    assert [u["user_id"] for u in added["updated_users"]] == ["m1"]
    assert added["updated_users"][0]["teams"] == ["t1"]
    membership = added["updated_team_memberships"][0]
    assert membership["litellm_budget_table"]["max_budget"] == 2.0

    resp = await client.post("/team/member_add", json={
        "team_id": "t1", "member": {"role": "user", "user_id": "m1"}}, headers=ADMIN)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["type"], error["param"]) == ("team_member_already_in_team", "member")
    assert error["message"].startswith("User already in team. Member: user_id=m1")

    updated = await admin_post(client, "/team/member_update", {
        "team_id": "t1", "user_id": "m1", "max_budget_in_team": 5.0, "role": "admin"})
    assert updated == {"user_id": "m1", "user_email": None, "team_id": "t1",
                       "max_budget_in_team": 5.0, "tpm_limit": None, "rpm_limit": None}
    info = await admin_get(client, "/team/info", team_id="t1")
    assert {"user_id": "m1", "user_email": None, "role": "admin"} in \
        info["team_info"]["members_with_roles"]
    [m1] = [m for m in info["team_memberships"] if m["user_id"] == "m1"]
    assert m1["litellm_budget_table"]["max_budget"] == 5.0

    team = await admin_post(client, "/team/member_delete", {"team_id": "t1", "user_id": "m1"})
    assert all(m["user_id"] != "m1" for m in team["members_with_roles"])
    user = await admin_get(client, "/user/info", user_id="m1")
    assert user["user_info"]["teams"] == []
    resp = await client.post("/team/member_delete", json={"team_id": "t1", "user_id": "m1"},
                             headers=ADMIN)
    assert (resp.status, await resp.json()) == (400, {"detail": {
        "error": "User not found in team"}})


async def test_a_team_admin_manages_their_team_and_nothing_else(start):
    client = await start()
    lead = bearer((await admin_post(client, "/user/new", {"user_id": "lead"}))["key"])
    await admin_post(client, "/team/new", {"team_id": "led", "members_with_roles": [
        {"role": "admin", "user_id": "lead"}]})
    await admin_post(client, "/team/new", {"team_id": "other"})
    resp = await client.post("/team/member_add", json={
        "team_id": "led", "member": {"role": "user", "user_id": "new-hire"}}, headers=lead)
    assert resp.status == 200, await resp.text()
    resp = await client.post("/team/model/add", json={"team_id": "led", "models": ["gpt-4o"]},
                             headers=lead)
    assert (await resp.json())["models"] == ["all-proxy-models", "gpt-4o"]
    resp = await client.post("/team/member_add", json={
        "team_id": "other", "member": {"role": "user", "user_id": "x"}}, headers=lead)
    assert resp.status == 403
    assert await resp.json() == {"detail": {"error": "Call not allowed. User not proxy admin "
                                                     "OR team admin. route=/team/member_add, "
                                                     "team_id=other"}}
    resp = await client.post("/team/member_update", json={
        "team_id": "other", "user_id": "default_user_id", "role": "user"}, headers=lead)
    assert resp.status == 403
    assert "route=/team/member_delete" in (await resp.json())["detail"]["error"]
    resp = await client.post("/team/model/delete", json={"team_id": "other",
                                                         "models": ["gpt-4o"]}, headers=lead)
    assert await resp.json() == {"detail": {
        "error": "Only proxy admin or team admin can modify team models"}}


async def test_a_blocked_team_refuses_its_keys_until_unblocked(start, chat):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "blockable"})
    key = bearer((await admin_post(client, "/key/generate", {"team_id": "blockable"}))["key"])
    assert (await admin_post(client, "/team/block", {"team_id": "blockable"}))["blocked"]
    resp = await client.post("/v1/chat/completions", json=chat(), headers=key)
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == (
        "Authentication Error, Team=blockable is blocked. Update via `/team/unblock` if your "
        "admin.")
    await admin_post(client, "/team/unblock", {"team_id": "blockable"})
    assert (await client.post("/v1/chat/completions", json=chat(), headers=key)).status == 200


async def test_team_delete_removes_memberships(start):
    client = await start()
    await admin_post(client, "/team/new", {"team_id": "gone", "members_with_roles": [
        {"role": "user", "user_id": "leaver"}]})
    assert (await admin_get(client, "/user/info", user_id="leaver"))["user_info"]["teams"] \
        == ["gone"]
    await admin_post(client, "/team/delete", {"team_ids": ["gone"]})
    assert (await admin_get(client, "/user/info", user_id="leaver"))["user_info"]["teams"] \
        == []


async def test_budgets_new_info_update_settings_delete(start):
    client = await start()
    made = await admin_post(client, "/budget/new", {"budget_id": "b1", "max_budget": 5.0,
                                                    "budget_duration": "1d"})
    assert (made["budget_id"], made["max_budget"], made["keys"]) == ("b1", 5.0, None)
    assert made["budget_reset_at"] is not None
    assert (await admin_post(client, "/budget/update", {"budget_id": "b1",
                                                        "rpm_limit": 3}))["rpm_limit"] == 3
    [info] = await admin_post(client, "/budget/info", {"budgets": ["b1", "unknown"]})
    assert (info["max_budget"], info["rpm_limit"]) == (5.0, 3)
    settings = await admin_get(client, "/budget/settings", budget_id="b1")
    assert {s["field_name"]: s["field_value"] for s in settings}["max_budget"] == 5.0
    resp = await client.post("/budget/update", json={"max_budget": 1}, headers=ADMIN)
    assert await resp.json() == {"detail": {"error": "budget_id is required"}}
    resp = await client.post("/budget/info", json={"budgets": []}, headers=ADMIN)
    assert await resp.json() == {"detail": {
        "error": "Specify list of budget id's to query. Passed in=[]"}}
    assert (await admin_post(client, "/budget/delete", {"id": "b1"}))["budget_id"] == "b1"
    assert await admin_get(client, "/budget/list") == []


async def test_a_shared_budget_binds_every_customer_that_links_to_it(start, chat):
    client = await start()
    key = bearer((await admin_post(client, "/key/generate", {}))["key"])
    await admin_post(client, "/budget/new", {"budget_id": "shared", "max_budget": 0})
    await admin_post(client, "/customer/new", {"user_id": "linked", "budget_id": "shared"})
    resp = await client.post("/v1/chat/completions", json=chat(user="linked"), headers=key)
    assert resp.status == 400
    await admin_post(client, "/budget/update", {"budget_id": "shared", "max_budget": 10})
    resp = await client.post("/v1/chat/completions", json=chat(user="linked"), headers=key)
    assert resp.status == 200
    resp = await client.post("/customer/new", json={
        "user_id": "both", "budget_id": "shared", "max_budget": 1.0}, headers=ADMIN)
    assert resp.status in (400, 422)
    assert "Set either 'max_budget' or 'budget_id', not both." in await resp.text()


async def test_customer_routes_answer_as_litellm_does(start):
    client = await start()
    made = await admin_post(client, "/customer/new", {"user_id": "c1", "alias": "C",
                                                      "allowed_model_region": "eu"})
    assert made == {"user_id": "c1", "alias": "C", "spend": 0.0, "allowed_model_region": "eu",
                    "default_model": None, "budget_id": None, "litellm_budget_table": None,
                    "blocked": False}
    resp = await client.post("/customer/new", json={"user_id": "c1"}, headers=ADMIN)
    assert (await resp.json())["error"] == {
        "message": "Customer already exists, passed user_id=c1. Please pass a new user_id.",
        "type": "bad_request", "param": "user_id", "code": "400"}
    resp = await client.get("/customer/info", params={"end_user_id": "nobody"}, headers=ADMIN)
    assert (resp.status, await resp.json()) == (400, {"detail": {
        "error": "End User Id=nobody does not exist in db"}})
    # Quirk kept: empty values are dropped by /customer/update.
    updated = await admin_post(client, "/customer/update", {"user_id": "c1", "alias": "D",
                                                            "blocked": False})
    assert (updated["alias"], updated["blocked"]) == ("D", False)
    assert [c["user_id"] for c in await admin_get(client, "/end_user/list")] == ["c1"]
    deleted = await admin_post(client, "/customer/delete", {"user_ids": ["c1"]})
    assert deleted == {"deleted_customers": 1,
                       "message": "Successfully deleted customers with ids: ['c1']"}


async def test_organizations_with_members_and_a_team_moved_in(start):
    client = await start()
    org = await admin_post(client, "/organization/new", {
        "organization_alias": "acme", "models": ["gpt-4o"], "max_budget": 10})
    org_id = org["organization_id"]
    await admin_post(client, "/team/new", {"team_id": "mover", "models": ["gpt-4o"],
                                           "max_budget": 5, "members_with_roles": [
                                               {"role": "user", "user_id": "outsider"}]})
    resp = await client.post("/team/update", json={"team_id": "mover",
                                                   "organization_id": org_id}, headers=ADMIN)
    assert resp.status == 403
    assert "User=outsider is not a member" in (await resp.json())["detail"]["error"]

    added = await admin_post(client, "/organization/member_add", {
        "organization_id": org_id, "member": [{"role": "org_admin", "user_id": "outsider"}]})
    assert added["updated_organization_memberships"][0]["user_role"] == "org_admin"
    moved = await admin_post(client, "/team/update", {"team_id": "mover",
                                                      "organization_id": org_id})
    assert moved["data"]["organization_id"] == org_id

    resp = await client.patch("/organization/update", json={
        "organization_id": org_id, "litellm_budget_table": {"max_budget": 20}}, headers=ADMIN)
    info = await resp.json()
    assert info["litellm_budget_table"]["max_budget"] == 20
    assert [t["team_id"] for t in info["teams"]] == ["mover"]
    assert [m["user_id"] for m in info["members"]] == ["outsider"]

    # The org admin reads their organization.
    admin_key = bearer((await admin_post(client, "/key/generate",
                                         {"user_id": "outsider"}))["key"])
    await admin_post(client, "/user/update", {"user_id": "outsider",
                                              "user_role": "internal_user"})
    resp = await client.get("/organization/info", params={"organization_id": org_id},
                            headers=admin_key)
    assert resp.status == 200, await resp.text()
    listed = await (await client.get("/organization/list", headers=admin_key)).json()
    assert [o["organization_id"] for o in listed] == [org_id]

    resp = await client.patch("/organization/member_update", json={
        "organization_id": org_id, "user_id": "outsider", "role": "internal_user"},
        headers=ADMIN)
    assert (await resp.json())["user_role"] == "internal_user"
    resp = await client.get("/organization/info", params={"organization_id": org_id},
                            headers=admin_key)
    assert resp.status == 403
    resp = await client.delete("/organization/member_delete", json={
        "organization_id": org_id, "user_id": "outsider"}, headers=ADMIN)
    assert resp.status == 200

    resp = await client.delete("/organization/delete", json={"organization_ids": [org_id]},
                               headers=ADMIN)
    assert [o["organization_id"] for o in await resp.json()] == [org_id]
    resp = await client.get("/team/info", params={"team_id": "mover"}, headers=ADMIN)
    assert resp.status == 404
    resp = await client.get("/organization/info", params={"organization_id": org_id},
                            headers=ADMIN)
    assert (resp.status, await resp.json()) == (404, {"detail": {
        "error": "Organization not found"}})


async def test_an_org_admin_makes_teams_in_their_organization_only(start):
    client = await start()
    mine = (await admin_post(client, "/organization/new", {"organization_alias": "mine"}))[
        "organization_id"]
    other = (await admin_post(client, "/organization/new", {"organization_alias": "other"}))[
        "organization_id"]
    key = bearer((await admin_post(client, "/user/new", {"user_id": "org-lead"}))["key"])
    await admin_post(client, "/organization/member_add", {
        "organization_id": mine, "member": {"role": "org_admin", "user_id": "org-lead"}})

    resp = await client.post("/team/new", json={"organization_id": mine}, headers=key)
    assert resp.status == 200, await resp.text()
    assert {"user_id": "org-lead", "user_email": None, "role": "admin"} in (
        await resp.json())["members_with_roles"]
    resp = await client.post("/team/new", json={}, headers=key)
    assert resp.status == 401
    assert (await resp.json())["error"]["message"].startswith(
        "Passed organization_id is None, please specify the organization_id in your request.")
    resp = await client.post("/team/new", json={"organization_id": other}, headers=key)
    assert resp.status == 401
    assert "Only proxy admin can be used" in (await resp.json())["error"]["message"]


async def _org_lead(client):
    """An organization "mine" led by org-lead (an internal user), a team in it and one in no
    organization; org-lead's key."""
    mine = (await admin_post(client, "/organization/new", {"organization_alias": "mine"}))[
        "organization_id"]
    key = bearer((await admin_post(client, "/user/new", {"user_id": "org-lead"}))["key"])
    await admin_post(client, "/organization/member_add", {
        "organization_id": mine, "member": {"role": "org_admin", "user_id": "org-lead"}})
    await admin_post(client, "/team/new", {"team_id": "inside", "organization_id": mine})
    await admin_post(client, "/team/new", {"team_id": "outside"})
    return mine, key


async def test_an_org_admin_manages_the_teams_keys_and_members_of_their_organization(start):
    client = await start()
    _, lead = await _org_lead(client)
    for path, body in (("/team/update", {"team_id": "inside", "max_budget": 5.0}),
                       ("/team/block", {"team_id": "inside"}),
                       ("/team/unblock", {"team_id": "inside"}),
                       ("/team/member_add", {"team_id": "inside",
                                             "member": {"role": "user", "user_id": "dev"}}),
                       ("/team/member_update", {"team_id": "inside", "user_id": "dev",
                                                "max_budget_in_team": 1.0}),
                       ("/team/model/add", {"team_id": "inside", "models": ["gpt-4o"]})):
        resp = await client.post(path, json=body, headers=lead)
        assert resp.status == 200, (path, await resp.text())
    resp = await client.get("/team/info", params={"team_id": "inside"}, headers=lead)
    assert resp.status == 200
    assert (await resp.json())["team_info"]["max_budget"] == 5.0

    # Keys of the organization's teams, made for someone else, are theirs to change.
    resp = await client.post("/key/generate", json={"team_id": "inside", "user_id": "org-lead"},
                             headers=lead)
    assert resp.status == 200, await resp.text()
    made = (await admin_post(client, "/key/generate", {"team_id": "inside",
                                                       "user_id": "dev"}))["key"]
    resp = await client.post("/key/update", json={"key": made, "max_budget": 2.0},
                             headers=lead)
    assert resp.status == 200, await resp.text()
    resp = await client.post("/key/delete", json={"keys": [made]}, headers=lead)
    assert resp.status == 200, await resp.text()

    resp = await client.post("/team/member_delete", json={"team_id": "inside",
                                                          "user_id": "dev"}, headers=lead)
    assert resp.status == 200, await resp.text()
    resp = await client.post("/team/delete", json={"team_ids": ["inside"]}, headers=lead)
    assert resp.status == 200, await resp.text()
    assert (await client.get("/team/info", params={"team_id": "inside"},
                             headers=ADMIN)).status == 404


async def test_an_org_admin_cannot_touch_teams_outside_their_organization(start):
    client = await start()
    _, lead = await _org_lead(client)
    outsider_key = (await admin_post(client, "/key/generate", {"team_id": "outside",
                                                               "user_id": "dev"}))["key"]
    for path, body, needle in (
            ("/team/update", {"team_id": "outside", "max_budget": 5.0}, "Only proxy admin"),
            ("/team/block", {"team_id": "outside"}, "Only proxy admin"),
            ("/team/delete", {"team_ids": ["inside", "outside"]}, "Only proxy admin"),
            # Nor move their own team out of the organization.
            ("/team/update", {"team_id": "inside", "organization_id": ""},
             "Passed organization_id is None")):
        resp = await client.post(path, json=body, headers=lead)
        assert resp.status == 401, (path, await resp.text())
        assert needle in (await resp.json())["error"]["message"]
    resp = await client.post("/team/member_add", json={
        "team_id": "outside", "member": {"role": "user", "user_id": "x"}}, headers=lead)
    assert resp.status == 403
    resp = await client.post("/key/update", json={"key": outsider_key, "max_budget": 2.0},
                             headers=lead)
    assert resp.status == 403
    resp = await client.post("/key/generate", json={"team_id": "outside"}, headers=lead)
    assert resp.status == 400
    info = await admin_get(client, "/team/info", team_id="outside")
    assert (info["team_info"]["max_budget"], info["team_info"]["blocked"]) == (None, False)
    assert (await admin_get(client, "/team/info", team_id="inside"))["team_info"][
        "organization_id"] is not None

    # Someone who administers no organization is refused before the body is read.
    plain = bearer((await admin_post(client, "/user/new", {"user_id": "plain"}))["key"])
    resp = await client.post("/team/update", data=b"{", headers=plain)
    assert resp.status == 401


async def test_an_org_admin_gives_a_new_team_no_more_than_their_own_key(start):
    client = await start()
    mine, _ = await _org_lead(client)
    lead = bearer((await admin_post(client, "/key/generate", {
        "user_id": "org-lead", "max_budget": 10.0, "tpm_limit": 100, "rpm_limit": 10,
        "models": ["gpt-4o"]}))["key"])
    for field, value, start_of_message in (
            ("max_budget", 11.0, "{'error': 'max budget higher than user max. User max "
                                 "budget=10.0. User role=internal_user'}"),
            ("tpm_limit", 101, "{'error': 'tpm limit higher than user max. User tpm "
                               "limit=100. User role=internal_user'}"),
            ("rpm_limit", 11, "{'error': 'rpm limit higher than user max. User rpm limit=10. "
                              "User role=internal_user'}"),
            ("models", ["gpt-4o", "o3"], "{'error': \"Model not in allowed user models. User "
                                         "allowed models=['gpt-4o']. User id=org-lead\"}")):
        resp = await client.post("/team/new", json={"organization_id": mine, field: value},
                                 headers=lead)
        assert resp.status == 400, (field, await resp.text())
        assert (await resp.json())["error"]["message"] == start_of_message
    resp = await client.post("/team/new", json={
        "organization_id": mine, "max_budget": 10.0, "tpm_limit": 100, "models": ["gpt-4o"]},
        headers=lead)
    assert resp.status == 200, await resp.text()


def _count_reads(monkeypatch, store):
    """The number of reads the store answers (the real store underneath)."""
    reads = {"n": 0}
    for name in ("get_row", "list_rows", "count_rows"):
        real = getattr(store, name)

        async def counted(*args, _real=real, **kwargs):
            reads["n"] += 1
            return await _real(*args, **kwargs)
        monkeypatch.setattr(store, name, counted)
    return reads


async def _reads_of(client, monkeypatch, path, **params):
    reads = _count_reads(monkeypatch, client.app[GATEWAY].store)
    body = await admin_get(client, path, **params)
    monkeypatch.undo()
    return reads["n"], body


@both_databases
async def test_user_info_reads_the_same_whatever_the_number_of_teams(start, monkeypatch):
    client = await start()
    for user_id, teams in (("one", 1), ("many", 6)):
        await admin_post(client, "/user/new", {"user_id": user_id, "auto_create_key": False})
        for n in range(teams):
            team_id = f"{user_id}-t{n}"
            await admin_post(client, "/team/new", {"team_id": team_id, "team_alias": team_id})
            await admin_post(client, "/team/member_add", {
                "team_id": team_id, "member": {"role": "user", "user_id": user_id},
                "max_budget_in_team": 1.0 + n})
            await admin_post(client, "/key/generate", {"team_id": team_id, "user_id": user_id})
    few, one = await _reads_of(client, monkeypatch, "/user/info", user_id="one")
    more, many = await _reads_of(client, monkeypatch, "/user/info", user_id="many")
    assert more == few
    assert [t["team_id"] for t in many["teams"]] == [f"many-t{n}" for n in range(6)]
    for n, team in enumerate(many["teams"]):
        [membership] = team["team_memberships"]
        assert membership["litellm_budget_table"]["max_budget"] == 1.0 + n
        assert [k["team_id"] for k in team["keys"]] == [team["team_id"]]
    assert {k["team_alias"] for k in many["keys"]} == {f"many-t{n}" for n in range(6)}
    assert [t["team_id"] for t in one["teams"]] == ["one-t0"]


@both_databases
async def test_organization_list_reads_the_same_whatever_the_number_of_organizations(
        start, monkeypatch):
    client = await start()
    reads = []
    await admin_post(client, "/user/new", {"user_id": "member", "auto_create_key": False})
    for n in range(5):
        org = (await admin_post(client, "/organization/new", {
            "organization_alias": f"org{n}", "max_budget": 10.0 + n}))["organization_id"]
        await admin_post(client, "/organization/member_add", {
            "organization_id": org, "member": {"role": "internal_user", "user_id": "member"},
            "max_budget_in_organization": 1.0 + n})
        await admin_post(client, "/team/new", {"team_id": f"team{n}", "organization_id": org})
        count, listed = await _reads_of(client, monkeypatch, "/organization/list")
        reads.append(count)
    assert reads == [reads[0]] * 5
    for org in listed:
        n = int(org["organization_alias"][3:])
        assert org["litellm_budget_table"]["max_budget"] == 10.0 + n
        [member] = org["members"]
        assert member["litellm_budget_table"]["max_budget"] == 1.0 + n
        assert [t["team_id"] for t in org["teams"]] == [f"team{n}"]


@both_databases
async def test_an_org_admin_lists_the_keys_of_their_organizations_teams(start):
    client = await start()
    mine, lead = await _org_lead(client)
    theirs = (await admin_post(client, "/key/generate", {"team_id": "inside",
                                                         "user_id": "dev"}))["token"]
    await admin_post(client, "/key/generate", {"team_id": "outside", "user_id": "dev"})
    own = (await admin_post(client, "/key/generate", {"user_id": "org-lead"}))["token"]

    async def listed(**params):
        resp = await client.get("/key/list", params=params, headers=lead)
        assert resp.status == 200, await resp.text()
        return set((await resp.json())["keys"])

    assert await listed(organization_id=mine) == {theirs}
    assert await listed(team_id="inside") == {theirs}
    assert theirs in await listed(include_team_keys="true")
    # Without a filter, and for teams outside the organization: their own keys only.
    assert theirs not in await listed()
    resp = await client.get("/key/list", params={"team_id": "outside"}, headers=lead)
    assert resp.status == 403
    assert own in await listed()
    # A plain member of the organization still sees only their own keys.
    member = bearer((await admin_post(client, "/user/new", {"user_id": "plain"}))["key"])
    await admin_post(client, "/organization/member_add", {
        "organization_id": mine, "member": {"role": "internal_user", "user_id": "plain"}})
    resp = await client.get("/key/list", params={"organization_id": mine}, headers=member)
    assert resp.status == 200
    assert theirs not in (await resp.json())["keys"]


async def test_an_empty_team_id_in_user_new_is_a_422_not_a_server_error(start):
    client = await start()
    for body in ({"teams": [""]}, {"team_id": ""}):
        resp = await client.post("/user/new", json=body, headers=ADMIN)
        assert resp.status == 422, await resp.text()
        assert (await resp.json())["detail"][0]["loc"][:2] == ["body", next(iter(body))]
