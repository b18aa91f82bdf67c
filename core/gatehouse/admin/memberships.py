"""Users and what they belong to: the user rows team and organization routes make for their
members, and a user's membership of a team (its role in the team's ``members_with_roles``,
its ``teams`` list, and a membership row with its ``max_budget_in_team``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web
from pydantic import Field, model_validator

from ..access.roles import INTERNAL_USER, ORG_ADMIN, is_proxy_admin, is_team_admin
from ..guardrails.call import PRINCIPAL, Principal
from ..store.schema import Row, membership_id
from .bodies import Body, Reply
from .budgets import (BudgetFields, all_rows, budget_view, create_budget, linked_budgets,
                      update_budget)
from .context import ADMIN, Admin
from .tables import Table, wire_view


class NamesUser(Body):
    """A body naming a user by id or by email."""

    user_id: str | None = None
    user_email: str | None = None

    @model_validator(mode="after")
    def _names_someone(self) -> NamesUser:
        if self.user_id is None and self.user_email is None:
            raise ValueError("Either user id or user email must be provided")
        return self


class MembershipView(Reply):
    """A user's membership of a team or an organization, as answers show it."""

    user_id: str
    budget_id: str | None
    spend: float
    litellm_budget_table: dict[str, Any] | None = Field(
        description="The member's own budget there (max_budget_in_team / "
                    "max_budget_in_organization)")


def user_view(row: Row) -> dict[str, Any]:
    return wire_view(row, {})


def membership_view(row: Row, budget: Row | None) -> dict[str, Any]:
    return {"user_id": row["user_id"], "team_id": row["team_id"],
            "budget_id": row["budget_id"], "spend": row["spend"],
            "litellm_budget_table": budget_view(budget)}


USERS = Table("users", "user", user_view)
TEAM_MEMBERS = Table("team_members", "team_member",
                     lambda row: membership_view(row, None))


async def ensure_user(request: web.Request, user_id: str, *, user_email: str | None = None,
                      role: str | None = INTERNAL_USER) -> Row:
    """The user's row, made (as an internal user) when there is none."""
    admin = request.app[ADMIN]
    row = await admin.store.get_row("users", user_id)
    if row is not None:
        return row
    now = time.time()
    return await USERS.create(request, user_id, {
        "user_id": user_id, "user_email": user_email, "user_role": role,
        "created_at": now, "updated_at": now})


async def resolve_user(request: web.Request, named: NamesUser) -> Row:
    """The user a body names, made when there is none: one named only by email is the user
    with that email, or a new one."""
    user_id = named.user_id
    if user_id is None:
        found = await request.app[ADMIN].store.list_rows(
            "users", where={"user_email": named.user_email}, limit=1)
        user_id = found[0]["user_id"] if found else str(uuid.uuid4())
    return await ensure_user(request, user_id, user_email=named.user_email)


async def set_user_teams(request: web.Request, user: Row, teams: list[str]) -> Row:
    if teams == user["teams"]:
        return user
    return await USERS.update(request, user["user_id"], user["user_id"], {"teams": teams})


async def join_team(request: web.Request, team_id: str, user_id: str,
                    max_budget_in_team: float | None) -> tuple[Row, Row]:
    """Make ``user_id`` (and its user row) a member of ``team_id``: ``(user, membership)``.
    The team's ``members_with_roles`` is the caller's to update."""
    user = await ensure_user(request, user_id)
    user = await set_user_teams(request, user, [*dict.fromkeys([*user["teams"], team_id])])
    membership = await ensure_membership(request, TEAM_MEMBERS, "team_id", team_id, user_id)
    if max_budget_in_team is not None:
        membership = await set_member_budget(request, TEAM_MEMBERS, membership,
                                             BudgetFields(max_budget=max_budget_in_team),
                                             {"max_budget"})
    return user, membership


async def ensure_membership(request: web.Request, table: Table, group: str, group_id: str,
                            user_id: str, **columns: Any) -> Row:
    """The membership of ``user_id`` in a team or organization (``group`` names its id
    column), made with ``columns`` when there is none."""
    ident = membership_id(group_id, user_id)
    row = await request.app[ADMIN].store.get_row(table.kind, ident)
    if row is None:
        now = time.time()
        row = await table.create(request, ident, {
            "membership_id": ident, group: group_id, "user_id": user_id, **columns,
            "created_at": now, "updated_at": now})
    return row


async def set_member_budget(request: web.Request, table: Table, membership: Row,
                            body: BudgetFields, fields: set[str]) -> Row:
    """Set the limits of a team's or organization's member: on the membership's own budget
    row, made on first use."""
    ident = membership["membership_id"]
    if membership["budget_id"] is not None:
        await update_budget(request, membership["budget_id"], body, fields)
        return membership
    budget = await create_budget(request, body, fields)
    return await table.update(request, ident, ident, {"budget_id": budget["budget_id"]})


async def leave_team(request: web.Request, team_id: str, user_id: str) -> None:
    """Drop the membership row and the team from the user's ``teams``."""
    admin = request.app[ADMIN]
    ident = membership_id(team_id, user_id)
    if await admin.store.get_row("team_members", ident) is not None:
        await TEAM_MEMBERS.delete(request, {ident: ident})
    user = await admin.store.get_row("users", user_id)
    if user is not None:
        await set_user_teams(request, user, [t for t in user["teams"] if t != team_id])


async def memberships_view(request: web.Request, where: Row) -> list[dict[str, Any]]:
    return await memberships_views(request, await all_rows(request.app[ADMIN], "team_members",
                                                            where))


async def memberships_views(request: web.Request, rows: list[Row]) -> list[dict[str, Any]]:
    budgets = await linked_budgets(request.app[ADMIN], rows)
    return [membership_view(row, budgets.get(row["budget_id"])) for row in rows]


async def is_org_admin(request: web.Request, org_id: str | None = None) -> bool:
    """Whether the caller is an ``org_admin`` of ``org_id`` (of any organization when None)."""
    return await administers_org(request.app[ADMIN], request[PRINCIPAL], org_id)


async def administers_org(admin: Admin, principal: Principal, org_id: str | None) -> bool:
    """Whether ``principal`` is an ``org_admin`` of ``org_id`` (of any organization when
    None)."""
    user_id = principal.user_id
    if user_id is None:
        return False
    if org_id is None:
        return any(m["user_role"] == ORG_ADMIN for m in await all_rows(
            admin, "organization_members", {"user_id": user_id}))
    membership = await admin.store.get_row("organization_members",
                                           membership_id(org_id, user_id))
    return membership is not None and membership["user_role"] == ORG_ADMIN


async def manages_team(admin: Admin, principal: Principal, team: Row) -> bool:
    """A proxy admin, the team's admin, or an ``org_admin`` of the team's organization."""
    return is_proxy_admin(principal) or is_team_admin(principal, team) or (
        team.get("organization_id") is not None
        and await administers_org(admin, principal, team["organization_id"]))
