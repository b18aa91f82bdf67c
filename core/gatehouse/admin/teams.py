"""Teams: ``/team/new``, ``/team/update``, ``/team/info``, ``/team/list``, ``/team/delete``,
``/team/block``, ``/team/unblock``, ``/team/member_add``, ``/team/member_delete``,
``/team/member_update``, ``/team/model/add``, ``/team/model/delete``.

A team's models, budget, limits and ``blocked`` bind every key in it; its organization's bind
the team. Its ``metadata.guardrails`` is either a list of guardrails its keys always run or, as
in LiteLLM, ``{"modify_guardrails": false}`` to stop its keys' requests from choosing
guardrails. Every member has a user row, and a membership row that holds its
``max_budget_in_team``. Team admins may manage their team's members and models.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import Field, RootModel

from ..access.roles import (
    Rule,
    is_proxy_admin,
    is_team_member,
    not_admin,
    reads_everything,
    role_of,
)
from ..errors import ClientError, DetailError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..store.schema import Row, membership_id
from .bodies import Body, Duration, Limit, Query, Reply, Update, parse_body, parse_query, reply
from .budgets import BudgetFields, all_rows, linked_budget, rows_where_in, with_reset
from .context import ADMIN, Admin, check_guardrails, gated
from .key_bodies import KeyView
from .key_views import KEYS, key_view
from .memberships import (
    TEAM_MEMBERS,
    MembershipView,
    NamesUser,
    administers_org,
    is_org_admin,
    join_team,
    leave_team,
    manages_team,
    memberships_view,
    memberships_views,
    resolve_user,
    set_member_budget,
    user_view,
)
from .tables import MASTER_USER, Table, actor, wire_view


class Member(NamesUser):
    role: Literal["admin", "user"]


class TeamFields(Body):
    team_alias: str | None = None
    organization_id: str | None = None
    models: list[str] = Field(default_factory=list)
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    blocked: bool = False
    team_member_permissions: list[str] = Field(default_factory=list)
    model_aliases: dict[str, str] | None = None


class NewTeam(TeamFields):
    team_id: str | None = Field(default=None, min_length=1)
    members_with_roles: list[Member] = Field(default_factory=list)


class UpdateTeam(TeamFields, Update):
    team_id: str = Field(min_length=1)


class TeamId(Body):
    team_id: str = Field(min_length=1)


class DeleteTeams(Body):
    team_ids: list[str] = Field(min_length=1)


class MemberAdd(Body):
    team_id: str = Field(min_length=1)
    member: Member | list[Member]
    max_budget_in_team: float | None = Field(default=None, ge=0)


class MemberRef(NamesUser):
    team_id: str = Field(min_length=1)


class MemberUpdate(MemberRef):
    role: Literal["admin", "user"] | None = None
    max_budget_in_team: float | None = Field(default=None, ge=0)
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None


M = TypeVar("M", bound=MemberRef)


class TeamModels(Body):
    team_id: str = Field(min_length=1)
    models: list[str] = Field(min_length=1)


class TeamInfoQuery(Query):
    team_id: str | None = Field(default=None, description="Without it, the calling key's team")


class TeamListQuery(Query):
    user_id: str | None = Field(default=None, description="Teams this user is a member of")
    organization_id: str | None = Field(
        default=None, description="default_organization: the teams in no organization")


class TeamMember(Reply):
    user_id: str | None
    user_email: str | None
    role: Literal["admin", "user"]


class TeamMembership(MembershipView):
    team_id: str


class TeamView(Reply):
    team_id: str
    team_alias: str | None
    organization_id: str | None
    members_with_roles: list[TeamMember]
    models: list[str] = Field(description="Models the team's keys may call; [] is every model")
    max_budget: float | None
    spend: float
    tpm_limit: int | None
    rpm_limit: int | None
    budget_duration: str | None
    blocked: bool
    metadata: dict[str, Any]
    team_member_permissions: list[str]
    created_at: str
    updated_at: str


class TeamInfo(Reply):
    team_id: str
    team_info: TeamView
    keys: list[KeyView]
    team_memberships: list[TeamMembership]


class ListedTeam(TeamView):
    team_memberships: list[TeamMembership]
    keys: list[KeyView]


class TeamList(RootModel[list[ListedTeam]]):
    pass


def team_view(row: Row) -> dict[str, Any]:
    return {**wire_view(row, {"members": "members_with_roles"}), "admins": [], "members": []}


TEAMS = Table("teams", "team", team_view)


def setup(app: web.Application) -> None:
    app.router.add_post("/team/new", new)
    app.router.add_post("/team/update", update)
    app.router.add_get("/team/info", info)
    app.router.add_get("/team/list", listing)
    app.router.add_post("/team/delete", delete)
    app.router.add_post("/team/block", block)
    app.router.add_post("/team/unblock", unblock)
    app.router.add_post("/team/member_add", member_add)
    app.router.add_post("/team/member_delete", member_delete)
    app.router.add_post("/team/member_update", member_update)
    app.router.add_post("/team/model/add", model_add)
    app.router.add_post("/team/model/delete", model_delete)


@gated(Rule.MEMBERS)
async def new(request: web.Request, admin: Admin) -> web.Response:
    principal = request[PRINCIPAL]
    await _require_some_admin(request)
    body = _with_defaults(admin, await parse_body(request, NewTeam))
    if not is_proxy_admin(principal):
        await _require_org_admin_of(request, body.organization_id)
        _check_within_own_key(principal, body)
    team_id = body.team_id or str(uuid.uuid4())
    if await admin.store.get_row("teams", team_id) is not None:
        raise ClientError(400, f"{{'error': 'Team id = {team_id} already exists. Please use a "
                               f"different team id.'}}", param="team_id")
    members = [await _resolve(request, m) for m in body.members_with_roles]
    # The caller becomes the team's admin, as in LiteLLM.
    me = actor(request)
    if all(m["user_id"] != me for m in members):
        members.append({"user_id": me, "user_email": None, "role": "admin"})
    now = time.time()
    row = {"team_id": team_id, **_columns(admin, body, set(TeamFields.model_fields), now),
           "members": members, "created_at": now, "updated_at": now}
    created = await TEAMS.create(request, team_id, row)
    for member in members:
        await join_team(request, team_id, member["user_id"], None)
    return json_response(team_view(created))


@gated(Rule.MEMBERS)
async def update(request: web.Request, admin: Admin) -> web.Response:
    await _require_some_admin(request)
    body = await parse_body(request, UpdateTeam)
    changes = _columns(admin, body, body.model_fields_set - {"team_id"}, time.time())
    if not changes:
        raise ClientError(400, "Nothing to update: pass at least one field besides 'team_id'")
    team = await _team(admin, body.team_id, f"Team not found, passed team_id={body.team_id}",
                       status=404)
    await _require_org_admin_of_team(request, team)
    if changes.get("organization_id") == "":
        changes["organization_id"] = None
    moved_to = changes.get("organization_id")
    if "organization_id" in changes and not is_proxy_admin(request[PRINCIPAL]):
        # An organization's admin moves teams only between organizations they run.
        await _require_org_admin_of(request, moved_to)
    if moved_to and moved_to != team["organization_id"]:
        await _check_org_move(admin, {**team, **changes}, moved_to)
    row = await TEAMS.update(request, body.team_id, body.team_id, changes)
    return json_response({"team_id": body.team_id, "data": team_view(row)})


@gated(Rule.SELF)
async def info(request: web.Request, admin: Admin) -> web.Response:
    team_id = parse_query(request, TeamInfoQuery).team_id or request[PRINCIPAL].team_id
    if not team_id:
        raise ClientError(422, "{'message': 'Malformed request. No team id passed in.'}",
                          kind="auth_error", param="None")
    row = await admin.store.get_row("teams", team_id)
    if row is None:
        raise ClientError(404, f"{{'message': 'Team not found, passed team id: {team_id}.'}}",
                          kind="auth_error", param="None")
    principal = request[PRINCIPAL]
    if not reads_everything(principal) and not is_team_member(principal, row) and not (
            row["organization_id"] is not None
            and await administers_org(admin, principal, row["organization_id"])):
        raise ClientError(403, f"{{'error': 'User={principal.user_id} not authorized to access "
                               f"this team={team_id}'}}", kind="auth_error", param="None")
    return reply(TeamInfo, {"team_id": team_id, "team_info": team_view(row),
                            "keys": [key_view(k) for k in await _team_keys(admin, team_id)],
                            "team_memberships": await memberships_view(request,
                                                                       {"team_id": team_id})})


@gated(Rule.SELF)
async def listing(request: web.Request, admin: Admin) -> web.Response:
    principal = request[PRINCIPAL]
    query = parse_query(request, TeamListQuery)
    user_id, org = query.user_id, query.organization_id
    if not reads_everything(principal) and (user_id is None or user_id != principal.user_id):
        raise DetailError(401, {"error": f"Only admin users can query all teams/other teams. "
                                         f"Your user role={role_of(principal)}"})
    rows = [row for row in await all_rows(admin, "teams")
            if (user_id is None or any(m.get("user_id") == user_id for m in row["members"]))
            and (org is None or row["organization_id"] == (
                None if org == "default_organization" else org))]
    # Every listed team's memberships and keys in a few queries, not a few per team.
    ids = {row["team_id"] for row in rows}
    memberships: dict[str, list[dict[str, Any]]] = {team_id: [] for team_id in ids}
    for view in await memberships_views(request, await rows_where_in(
            admin, "team_members", "team_id", ids)):
        memberships[view["team_id"]].append(view)
    keys: dict[str, list[dict[str, Any]]] = {team_id: [] for team_id in ids}
    for key in await rows_where_in(admin, "keys", "team_id", ids):
        keys[key["team_id"]].append(key_view(key))
    teams = [{**team_view(row), "team_memberships": memberships[row["team_id"]],
              "keys": keys[row["team_id"]]} for row in rows]
    teams.sort(key=lambda t: t["team_alias"] or "")
    return reply(TeamList, teams)


@gated(Rule.MEMBERS)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    await _require_some_admin(request)
    body = await parse_body(request, DeleteTeams)
    teams = [await _team(admin, team_id, f"Team not found, passed team_id={team_id}",
                         status=404) for team_id in dict.fromkeys(body.team_ids)]
    for team in teams:
        await _require_org_admin_of_team(request, team)
    keys = await delete_teams(request, teams)
    return json_response({"deleted_teams": body.team_ids, "deleted_keys": keys})


async def delete_teams(request: web.Request, teams: list[Row]) -> list[str]:
    """Delete teams with their keys and memberships (a key left behind would keep working
    without the team's budget and limits); the deleted keys' hashes."""
    admin = request.app[ADMIN]
    # Keys first: if the database fails half-way, a team without keys is harmless.
    keys = await rows_where_in(admin, "keys", "team_id", {t["team_id"] for t in teams})
    await KEYS.remove(request, keys)
    for team in teams:
        for member in team["members"]:
            await leave_team(request, team["team_id"], member["user_id"])
    await TEAMS.remove(request, teams)
    return [key["key_hash"] for key in keys]


@gated(Rule.MEMBERS)
async def block(request: web.Request, admin: Admin) -> web.Response:
    return await _set_blocked(request, admin, True)


@gated(Rule.MEMBERS)
async def unblock(request: web.Request, admin: Admin) -> web.Response:
    return await _set_blocked(request, admin, False)


async def _set_blocked(request: web.Request, admin: Admin, blocked: bool) -> web.Response:
    await _require_some_admin(request)
    body = await parse_body(request, TeamId)
    team = await _team(admin, body.team_id, f"Team not found, passed team_id={body.team_id}",
                       status=404)
    await _require_org_admin_of_team(request, team)
    row = await TEAMS.update(request, body.team_id, body.team_id, {"blocked": blocked})
    return json_response(team_view(row))


@gated(Rule.MEMBERS)
async def member_add(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, MemberAdd)
    team = await _team(admin, body.team_id, f"Team not found for team_id={body.team_id}",
                       status=404)
    await _require_team_admin(request, team, "/team/member_add")
    adding = body.member if isinstance(body.member, list) else [body.member]
    resolved = [await _resolve(request, m) for m in adding]
    present = {m["user_id"] for m in team["members"]}
    new_members = [m for m in resolved if m["user_id"] not in present]
    if not new_members:
        shown = ", ".join(f"user_id={m['user_id']}, user_email={m['user_email']}"
                          for m in resolved)
        lead = "All users are already in team" if isinstance(body.member, list) \
            else "User already in team"
        raise ClientError(400, f"{lead}. Member: {shown}. Existing members="
                               f"{team['members']}", kind="team_member_already_in_team",
                          param="member")
    row = await TEAMS.update(request, body.team_id, body.team_id,
                             {"members": [*team["members"], *new_members]})
    users = [user_view((await join_team(request, body.team_id, m["user_id"],
                                         body.max_budget_in_team))[0]) for m in new_members]
    added = {m["user_id"] for m in new_members}
    return json_response({
        **team_view(row), "updated_users": users,
        "updated_team_memberships": [
            view for view in await memberships_view(request, {"team_id": body.team_id})
            if view["user_id"] in added]})


@gated(Rule.MEMBERS)
async def member_delete(request: web.Request, admin: Admin) -> web.Response:
    body, team, member = await _member_request(request, admin, MemberRef)
    remaining = [m for m in team["members"] if m is not member]
    row = await TEAMS.update(request, body.team_id, body.team_id, {"members": remaining})
    await leave_team(request, body.team_id, member["user_id"])
    return json_response(team_view(row))


@gated(Rule.MEMBERS)
async def member_update(request: web.Request, admin: Admin) -> web.Response:
    body, team, member = await _member_request(request, admin, MemberUpdate)
    if body.role is not None and body.role != member["role"]:
        members = [{**m, "role": body.role} if m is member else m for m in team["members"]]
        await TEAMS.update(request, body.team_id, body.team_id, {"members": members})
    _, membership = await join_team(request, body.team_id, member["user_id"], None)
    limits = BudgetFields(max_budget=body.max_budget_in_team, tpm_limit=body.tpm_limit,
                          rpm_limit=body.rpm_limit)
    if body.max_budget_in_team is None and body.tpm_limit is None and body.rpm_limit is None:
        # All three null: the member's own limits are lifted.
        ident = membership["membership_id"]
        await TEAM_MEMBERS.update(request, ident, ident, {"budget_id": None})
    else:
        await set_member_budget(request, TEAM_MEMBERS, membership, limits,
                                {"max_budget", "tpm_limit", "rpm_limit"})
    return json_response({"user_id": member["user_id"], "user_email": member.get("user_email"),
                          "team_id": body.team_id, "max_budget_in_team": body.max_budget_in_team,
                          "tpm_limit": body.tpm_limit, "rpm_limit": body.rpm_limit})


@gated(Rule.MEMBERS)
async def model_add(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, TeamModels)
    team = await _models_team(request, admin, body)
    # An empty list means every model; adding to it keeps that meaning, as LiteLLM does.
    models = team["models"] or ["all-proxy-models"]
    row = await TEAMS.update(request, body.team_id, body.team_id,
                             {"models": [*dict.fromkeys([*models, *body.models])]})
    return json_response(team_view(row))


@gated(Rule.MEMBERS)
async def model_delete(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, TeamModels)
    team = await _models_team(request, admin, body)
    row = await TEAMS.update(request, body.team_id, body.team_id, {
        "models": [m for m in team["models"] if m not in body.models]})
    return json_response(team_view(row))


async def _models_team(request: web.Request, admin: Admin, body: TeamModels) -> Row:
    team = await _team(admin, body.team_id, f"Team not found, passed team_id={body.team_id}",
                       status=404)
    if not await manages_team(admin, request[PRINCIPAL], team):
        raise DetailError(403, {"error": "Only proxy admin or team admin can modify team models"})
    return team


async def _member_request(request: web.Request, admin: Admin, model: type[M]
                          ) -> tuple[M, Row, dict[str, Any]]:
    """The body of a route changing one member, the team and the member, once the caller
    may."""
    body = await parse_body(request, model)
    team = await _team(admin, body.team_id, f"Team id={body.team_id} does not exist in db",
                       status=400)
    # Quirk (LiteLLM's): member_update's refusal names /team/member_delete too.
    await _require_team_admin(request, team, "/team/member_delete")
    return body, team, _find(team, body)


def _with_defaults(admin: Admin, body: NewTeam) -> NewTeam:
    """``default_team_settings``: as in LiteLLM, the first entry's ``max_budget`` is a new
    team's when it names none (and, for a non-admin, must fit within their own key too)."""
    defaults = admin.settings.default_team_settings
    if body.max_budget is None and defaults and defaults[0].max_budget is not None:
        return body.model_copy(update={"max_budget": defaults[0].max_budget})
    return body


async def _require_org_admin_of(request: web.Request, org_id: str | None) -> None:
    """An organization's admins make teams in it, and only there."""
    if org_id is None:
        raise ClientError(401, "Passed organization_id is None, please specify the "
                               "organization_id in your request. An organization admin can "
                               "only create teams in their organization.", kind="auth_error",
                          param="None")
    if not await is_org_admin(request, org_id):
        raise not_admin(request[PRINCIPAL], request.path)


async def _require_some_admin(request: web.Request) -> None:
    """Proxy admins and organization admins manage teams; who may is settled before the body
    is read, so a refusal beats a 400."""
    if not is_proxy_admin(request[PRINCIPAL]) and not await is_org_admin(request):
        raise not_admin(request[PRINCIPAL], request.path)


async def _require_org_admin_of_team(request: web.Request, team: Row) -> None:
    """Beyond proxy admins, only an admin of the team's organization changes the team."""
    if not is_proxy_admin(request[PRINCIPAL]) and (
            team["organization_id"] is None
            or not await is_org_admin(request, team["organization_id"])):
        raise not_admin(request[PRINCIPAL], request.path)


def _check_within_own_key(principal: Principal, body: NewTeam) -> None:
    """Someone who is not a proxy admin cannot give a team more than their own key has."""
    key = principal.key or {}
    role = role_of(principal)
    for field, name in (("tpm_limit", "tpm limit"), ("rpm_limit", "rpm limit"),
                        ("max_budget", "max budget")):
        wanted, own = getattr(body, field), key.get(field)
        if wanted is not None and own is not None and wanted > own:
            raise ClientError(400, repr({"error": f"{name} higher than user max. User {name}="
                                                  f"{own}. User role={role}"}), param=field)
    own_models = key.get("models") or []
    if own_models and any(model not in own_models for model in body.models):
        # LiteLLM's message is its error object's Python repr.
        raise ClientError(400, repr({"error": f"Model not in allowed user models. User allowed "
                                              f"models={own_models}. User id="
                                              f"{principal.user_id}"}), param="models")


async def _require_team_admin(request: web.Request, team: Row, route: str) -> None:
    principal = request[PRINCIPAL]
    if not await manages_team(request.app[ADMIN], principal, team):
        raise DetailError(403, {"error": f"Call not allowed. User not proxy admin OR team "
                                         f"admin. route={route}, team_id={team['team_id']}"})


def _find(team: Row, ref: MemberRef) -> dict[str, Any]:
    for member in team["members"]:
        if (ref.user_id is not None and member.get("user_id") == ref.user_id) or (
                ref.user_id is None and member.get("user_email") == ref.user_email):
            return member
    raise DetailError(400, {"error": "User not found in team"})


async def _team(admin: Admin, team_id: str, missing: str, *, status: int) -> Row:
    row = await admin.store.get_row("teams", team_id)
    if row is None:
        raise DetailError(status, {"error": missing})
    return row


async def _resolve(request: web.Request, member: Member) -> dict[str, Any]:
    """A member as the team stores it, with a user row behind it."""
    user = await resolve_user(request, member)
    return {"user_id": user["user_id"], "user_email": member.user_email, "role": member.role}


async def _check_org_move(admin: Admin, team: Row, org_id: str) -> None:
    """A team moved into an organization must fit inside it: its models, budget and limits,
    and every member must belong to the organization."""
    org = await admin.store.get_row("organizations", org_id)
    if org is None:
        raise DetailError(404, {"error": f"Organization={org_id} not found"})
    budget = await linked_budget(admin, org)
    problems = []
    allowed = org["models"]
    if allowed and "all-proxy-models" not in allowed:
        outside = [m for m in team["models"] if m not in allowed] if team["models"] \
            else ["all models"]
        if outside:
            problems.append(f"Team models {outside} are not in the organization's models "
                            f"{allowed}")
    for field in ("max_budget", "tpm_limit", "rpm_limit"):
        bound = (budget or {}).get(field)
        if bound is not None and (team[field] is None or team[field] > bound):
            problems.append(f"Team {field}={team[field]} exceeds the organization's "
                            f"{field}={bound}")
    for member in team["members"]:
        user_id = member.get("user_id")
        if user_id == MASTER_USER:
            continue
        if await admin.store.get_row("organization_members",
                                     membership_id(org_id, user_id)) is None:
            problems.append(f"User={user_id} is not a member of the organization")
    if problems:
        raise DetailError(403, {"error": f"Cannot move team to organization. "
                                         f"{'; '.join(problems)}"})


async def _team_keys(admin: Admin, team_id: str) -> list[Row]:
    return await all_rows(admin, "keys", {"team_id": team_id})


def _columns(admin: Admin, body: TeamFields, fields: set[str], now: float) -> Row:
    columns = with_reset(body.model_dump(include=fields & set(TeamFields.model_fields)), now,
                         aligned=True)
    guardrails = columns.get("metadata", {}).get("guardrails")
    if isinstance(guardrails, list) and all(isinstance(name, str) for name in guardrails):
        check_guardrails(admin, guardrails, "metadata")
    elif guardrails is not None and not (
            isinstance(guardrails, dict)
            and isinstance(guardrails.get("modify_guardrails", False), bool)):
        raise ClientError(400, "Invalid value for 'metadata.guardrails': expected a list of "
                               "guardrail names or {\"modify_guardrails\": false}",
                          param="metadata")
    return columns
