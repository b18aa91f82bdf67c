"""Internal users: ``/user/new``, ``/user/info``, ``/user/update``, ``/user/delete``,
``/user/list``.

A user owns keys (``user_id`` on the key) and holds a role that decides which admin routes
those keys may call (``access/roles.py``). A user's own ``max_budget`` and ``models`` bind
their personal keys (keys in no team); their membership of a team can carry a budget of its
own.
"""

from __future__ import annotations

import math
import time
from collections import Counter
import uuid
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from ..access import durations
from ..access.credentials import hash_key, key_name, new_key
from ..access.roles import Rule, is_proxy_admin, reads_everything
from ..errors import ClientError, DetailError, json_response
from ..guardrails.call import PRINCIPAL
from ..store.schema import Row
from .bodies import Body, Duration, Limit, Query, Reply, parse_body, parse_query, reply
from .budgets import all_rows, rows_where_in, with_reset
from .context import Admin, check_email, gated
from .key_bodies import KeyView
from .key_views import KEYS, key_view
from .memberships import USERS, NamesUser, join_team, leave_team, memberships_view, user_view
from .organizations import ORG_MEMBERS
from .teams import TEAMS, ListedTeam, TeamView, team_view

SORTABLE = ("user_id", "user_email", "created_at", "spend", "user_alias", "user_role")
MAX_PAGE_SIZE = 100
Role = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]


class TeamSeat(Body):
    team_id: str = Field(min_length=1)
    max_budget_in_team: float | None = Field(default=None, ge=0)
    user_role: Literal["user", "admin"] = "user"


class UserFields(Body):
    user_email: str | None = None
    user_alias: str | None = None
    user_role: Role | None = None
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class NewUser(UserFields):
    user_id: str | None = Field(default=None, min_length=1)
    # Team ids, or seats with a budget and role; an empty id is refused here (a 422), as a
    # seat's is.
    teams: list[Annotated[str, Field(min_length=1)]] | list[TeamSeat] | None = None
    team_id: str | None = Field(default=None, min_length=1)
    auto_create_key: bool = True
    # The auto-created key's own settings.
    key_alias: str | None = None
    duration: Duration | None = None
    # Mail the user an invitation (with the key made for them, if any).
    send_invite_email: bool | None = None


class UpdateUser(UserFields, NamesUser):
    spend: float | None = Field(default=None, ge=0)
    password: str | None = None


class DeleteUsers(Body):
    user_ids: list[str] = Field(min_length=1)


USER_COLUMNS = set(UserFields.model_fields)


class UserInfoQuery(Query):
    user_id: str | None = Field(default=None, description="Without it, the calling key's user "
                                                          "(a proxy admin: everything)")


class UserListQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=25, ge=1, le=MAX_PAGE_SIZE)
    sort_by: str | None = Field(default=None, description=f"One of {', '.join(SORTABLE)}; "
                                                          f"created_at when not given")
    sort_order: Literal["asc", "desc", "ASC", "DESC"] | None = Field(
        default=None, description="desc when sort_by is not given, else asc")
    role: Role | None = None
    user_ids: str | None = Field(default=None, description="Comma-separated user ids")
    user_email: str | None = Field(default=None, description="Part of the email, any case")
    team: str | None = Field(default=None, description="Members of this team")


class UserView(Reply):
    user_id: str
    user_email: str | None
    user_alias: str | None
    user_role: str | None
    teams: list[str]
    models: list[str]
    spend: float
    max_budget: float | None
    tpm_limit: int | None
    rpm_limit: int | None
    budget_duration: str | None
    metadata: dict[str, Any]
    created_at: str | None
    updated_at: str | None


class UserKey(KeyView):
    team_alias: str | None


class UserInfo(Reply):
    user_id: str | None
    user_info: UserView | dict[str, Any] | None = Field(
        description="{\"spend\": 0} for a user with keys but no user row")
    keys: list[UserKey] | list[KeyView]
    teams: list[ListedTeam] | list[TeamView]


class ListedUser(UserView):
    key_count: int


class UserList(Reply):
    users: list[ListedUser]
    total: int
    page: int
    page_size: int
    total_pages: int


def setup(app: web.Application) -> None:
    app.router.add_post("/user/new", new)
    app.router.add_get("/user/info", info)
    app.router.add_post("/user/update", update)
    app.router.add_post("/user/delete", delete)
    app.router.add_get("/user/list", listing)


@gated(Rule.ADMIN)
async def new(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, NewUser)
    check_email(admin, body.send_invite_email)
    user_id = body.user_id or str(uuid.uuid4())
    user = await admin.store.get_row("users", user_id)
    if user is None:
        if body.user_email is not None and await _by_email(admin, body.user_email):
            raise ClientError(400, f"{{'error': 'User with email {body.user_email} already "
                                   f"exists'}}", kind="bad_request_error", param="user_email")
        now = time.time()
        user = await USERS.create(request, user_id, {
            "user_id": user_id, **_columns(body, body.model_fields_set, now),
            "created_at": now, "updated_at": now})
    seats = [TeamSeat(team_id=t) if isinstance(t, str) else t for t in body.teams or ()]
    if body.team_id is not None:
        seats.append(TeamSeat(team_id=body.team_id))
    for seat in seats:
        await _seat(request, admin, user_id, seat)
    user = await admin.store.get_row("users", user_id) or user
    secret, key = "", None
    if body.auto_create_key:
        secret = new_key()
        token = hash_key(secret)
        now = time.time()
        # The key inherits the user's models when it names none of its own.
        key = await KEYS.create(request, token, {
            "key_hash": token, "key_name": key_name(secret), "key_alias": body.key_alias,
            "user_id": user_id, "models": user["models"], "created_at": now,
            "updated_at": now,
            "expires": durations.after(body.duration, now) if body.duration else None})
    if body.send_invite_email:
        admin.notices.user_invited(user, secret or None)
    key_fields = key_view(key) if key else {"expires": None}
    return json_response({**key_fields, **user_view(user), "key": secret, "token": None,
                          "token_id": None})


@gated(Rule.SELF)
async def info(request: web.Request, admin: Admin) -> web.Response:
    principal = request[PRINCIPAL]
    asked = parse_query(request, UserInfoQuery).user_id
    reader = reads_everything(principal)
    if not reader and asked is not None and asked != principal.user_id:
        raise ClientError(403, f"key not allowed to access this user's info. user_id={asked}, "
                               f"key's user_id={principal.user_id}", kind="auth_error",
                          param="None")
    user_id = asked if reader else principal.user_id
    if user_id is None:
        if not reader:
            raise ClientError(403, "No 'user_id' is associated with your API key.",
                              kind="auth_error", param="None")
        return reply(UserInfo, {
            "user_id": None, "user_info": None,
            "keys": [key_view(k) for k in await all_rows(admin, "keys")],
            "teams": [team_view(t) for t in await all_rows(admin, "teams")]})
    user = await admin.store.get_row("users", user_id)
    keys = await all_rows(admin, "keys", {"user_id": user_id})
    # The user's teams, memberships and keys in a few queries, not a few per team.
    team_ids = list((user or {}).get("teams") or ())
    found = {t["team_id"]: t for t in await rows_where_in(admin, "teams", "team_id", team_ids)}
    memberships = await memberships_view(request, {"user_id": user_id})
    teams = [{**team_view(found[team_id]),
              "team_memberships": [m for m in memberships if m["team_id"] == team_id],
              "keys": [key_view(k) for k in keys if k["team_id"] == team_id]}
             for team_id in team_ids if team_id in found]
    aliases = {t["team_id"]: t["team_alias"] for t in teams}
    return reply(UserInfo, {
        "user_id": user_id,
        "user_info": user_view(user) if user else {"spend": 0},
        "keys": [{**key_view(k), "team_alias": aliases.get(k["team_id"])} for k in keys],
        "teams": teams})


@gated(Rule.SELF)
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateUser)
    principal = request[PRINCIPAL]
    user = (await admin.store.get_row("users", body.user_id) if body.user_id is not None
            else await _by_email(admin, body.user_email or ""))
    target = user["user_id"] if user else body.user_id
    # LiteLLM drops empty values here: an update cannot clear a field.
    fields = {name for name in body.model_fields_set - {"user_id", "password"}
              if getattr(body, name) not in (None, [], {})}
    if not is_proxy_admin(principal):
        # Anyone else changes only their own contact details.
        if target is None or target != principal.user_id:
            raise ClientError(403, "{'error': 'User does not have permission to update this "
                                   "user. Only PROXY_ADMIN can update other users.'}",
                              kind="auth_error", param="None")
        if fields - {"user_email", "user_alias"}:
            raise ClientError(403, f"{{'error': 'Only PROXY_ADMIN can change "
                                   f"{sorted(fields - {'user_email', 'user_alias'})}'}}",
                              kind="auth_error", param="None")
    now = time.time()
    changes = _columns(body, fields, now)
    if "spend" in fields:
        changes["spend"] = body.spend
    if user is None:  # an upsert, as in LiteLLM
        target = target or str(uuid.uuid4())
        user = await USERS.create(request, target, {"user_id": target, **changes,
                                                    "created_at": now, "updated_at": now})
    elif changes:
        user = await USERS.update(request, target, target, changes)
    return json_response({"user_id": target, "data": user_view(user)})


@gated(Rule.ADMIN)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    """Delete users with their keys and memberships: a key of a deleted user would keep
    working with no one to answer for it."""
    body = await parse_body(request, DeleteUsers)
    users = []
    for user_id in body.user_ids:
        user = await admin.store.get_row("users", user_id)
        if user is None:
            raise DetailError(404, {"error": f"User not found, passed user_id={user_id}"})
        users.append(user)
    for user in users:
        user_id = user["user_id"]
        await KEYS.remove(request, await all_rows(admin, "keys", {"user_id": user_id}))
        for team_id in user["teams"]:
            team = await admin.store.get_row("teams", team_id)
            if team is not None:
                await TEAMS.update(request, team_id, team_id, {"members": [
                    m for m in team["members"] if m.get("user_id") != user_id]})
            await leave_team(request, team_id, user_id)
        await ORG_MEMBERS.remove(request, await all_rows(admin, "organization_members",
                                                         {"user_id": user_id}))
    await USERS.remove(request, users)
    return json_response(len(users))


@gated(Rule.ADMIN_READ)
async def listing(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, UserListQuery)
    page, size = query.page, query.page_size
    sort_by = query.sort_by or "created_at"
    if sort_by not in SORTABLE:
        raise ClientError(400, f"Invalid sort column. Must be one of: {', '.join(SORTABLE)}",
                          param="sort_by")
    ids = set(filter(None, (query.user_ids or "").split(",")))
    email = (query.user_email or "").lower()
    users = [u for u in await all_rows(admin, "users")
             if (query.role is None or u["user_role"] == query.role)
             and (not ids or u["user_id"] in ids)
             and email in (u["user_email"] or "").lower()
             and (query.team is None or query.team in u["teams"])]
    descending = (query.sort_order or ("desc" if query.sort_by is None else "asc")
                  ).lower() == "desc"
    users.sort(key=lambda u: (u[sort_by] is not None, u[sort_by] or 0)
               if sort_by in ("created_at", "spend") else str(u[sort_by] or ""),
               reverse=descending)
    shown = users[(page - 1) * size:page * size]
    # The page's key counts in one query, not one per user.
    counts = Counter(key["user_id"] for key in await rows_where_in(
        admin, "keys", "user_id", {u["user_id"] for u in shown}))
    return reply(UserList, {
        "users": [{**user_view(u), "key_count": counts[u["user_id"]]} for u in shown],
        "total": len(users), "page": page, "page_size": size,
        "total_pages": math.ceil(len(users) / size)})


async def _seat(request: web.Request, admin: Admin, user_id: str, seat: TeamSeat) -> None:
    team = await admin.store.get_row("teams", seat.team_id)
    if team is None:
        raise ClientError(400, f"Team not found: {seat.team_id}", param="teams")
    if all(m.get("user_id") != user_id for m in team["members"]):
        await TEAMS.update(request, seat.team_id, seat.team_id, {"members": [
            *team["members"], {"user_id": user_id, "user_email": None,
                               "role": seat.user_role}]})
    await join_team(request, seat.team_id, user_id, seat.max_budget_in_team)


async def _by_email(admin: Admin, email: str) -> Row | None:
    wanted = email.lower()
    return next((u for u in await all_rows(admin, "users")
                 if (u["user_email"] or "").lower() == wanted), None)


def _columns(body: BaseModel, fields: set[str], now: float) -> Row:
    columns = body.model_dump(include=fields & USER_COLUMNS)
    for name, empty in (("models", []), ("metadata", {})):
        if name in columns and columns[name] is None:
            columns[name] = empty
    return with_reset(columns, now, aligned=True)
