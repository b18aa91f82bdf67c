"""Teams: ``/team/new``, ``/team/update``, ``/team/info``, ``/team/delete``.

A team's models, budget, limits and ``blocked`` bind every key in it. Its
``metadata.guardrails`` is either a list of guardrails its keys always run or, as in LiteLLM,
``{"modify_guardrails": false}`` to stop its keys' requests from choosing guardrails.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, model_validator

from ..errors import ClientError, json_response
from ..store.database import Row
from .bodies import Body, Limit, Update, parse_body, query_str
from .context import Admin, admin_route, check_guardrails
from .tables import Table, wire_view
from .keys import KEYS, key_view

PAGE = 100  # keys read per query when walking a team's keys


class Member(Body):
    role: Literal["admin", "user"]
    user_id: str | None = None
    user_email: str | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> Member:
        if self.user_id is None and self.user_email is None:
            raise ValueError("a member needs a user_id or a user_email")
        return self


class TeamFields(Body):
    team_alias: str | None = None
    models: list[str] = Field(default_factory=list)
    max_budget: float | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)
    members_with_roles: list[Member] = Field(default_factory=list)
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    blocked: bool = False


class NewTeam(TeamFields):
    team_id: str | None = Field(default=None, min_length=1)


class UpdateTeam(TeamFields, Update):
    team_id: str = Field(min_length=1)


class DeleteTeams(Body):
    team_ids: list[str] = Field(min_length=1)


def team_view(row: Row) -> dict[str, Any]:
    return wire_view(row, {"members": "members_with_roles"})


TEAMS = Table("teams", "team", team_view)


def setup(app: web.Application) -> None:
    app.router.add_post("/team/new", new)
    app.router.add_post("/team/update", update)
    app.router.add_get("/team/info", info)
    app.router.add_post("/team/delete", delete)


@admin_route
async def new(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, NewTeam)
    team_id = body.team_id or str(uuid.uuid4())
    if await admin.store.get_row("teams", team_id) is not None:
        raise ClientError(400, f"Team already exists: {team_id}", param="team_id")
    now = time.time()
    row = {"team_id": team_id, **_columns(admin, body, set(TeamFields.model_fields)),
           "created_at": now, "updated_at": now}
    return json_response(team_view(await TEAMS.create(request, team_id, row)))


@admin_route
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateTeam)
    changes = _columns(admin, body, body.model_fields_set - {"team_id"})
    if not changes:
        raise ClientError(400, "Nothing to update: pass at least one field besides 'team_id'")
    row = await TEAMS.update(request, body.team_id, body.team_id, changes)
    return json_response({"team_id": body.team_id, "data": team_view(row)})


@admin_route
async def info(request: web.Request, admin: Admin) -> web.Response:
    team_id = query_str(request, "team_id")
    row = await TEAMS.fetch(admin, team_id, team_id)
    keys = await _team_keys(admin, team_id)
    return json_response({"team_id": team_id, "team_info": team_view(row),
                          "keys": [key_view(k) for k in keys]})


@admin_route
async def delete(request: web.Request, admin: Admin) -> web.Response:
    """Delete teams and their keys: a key left behind would keep working without the team's
    budget and limits."""
    body = await parse_body(request, DeleteTeams)
    for team_id in body.team_ids:
        await TEAMS.fetch(admin, team_id, team_id)
    # Keys first: if the database fails half-way, a team without keys is harmless.
    keys = [k["key_hash"] for team_id in body.team_ids
            for k in await _team_keys(admin, team_id)]
    if keys:
        await KEYS.delete(request, {k: k for k in keys})
    await TEAMS.delete(request, {team_id: team_id for team_id in body.team_ids})
    return json_response({"deleted_teams": body.team_ids, "deleted_keys": keys})


async def _team_keys(admin: Admin, team_id: str) -> list[Row]:
    rows: list[Row] = []
    while True:
        page = await admin.store.list_rows("keys", where={"team_id": team_id}, limit=PAGE,
                                             offset=len(rows))
        rows += page
        if len(page) < PAGE:
            return rows


def _columns(admin: Admin, body: TeamFields, fields: set[str]) -> Row:
    columns = body.model_dump(include=fields - {"members_with_roles"})
    if "members_with_roles" in fields:
        columns["members"] = [m.model_dump(exclude_none=True) for m in body.members_with_roles]
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
