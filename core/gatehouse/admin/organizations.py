"""Organizations: ``/organization/new``, ``/organization/update`` (PATCH), ``/organization/info``,
``/organization/list``, ``/organization/delete`` (DELETE), ``/organization/member_add``,
``/organization/member_update`` (PATCH), ``/organization/member_delete`` (DELETE).

An organization's models and budget bound every team in it, and so every key of those teams:
a call is refused once the organization's spend reaches its budget, or for a model outside its
list. Its members are users with an organization role; an ``org_admin`` may read it and manage
its members.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, RootModel

from ..access.roles import (
    INTERNAL_USER,
    NO_ROLE,
    PROXY_ADMIN_VIEWER,
    Rule,
    is_proxy_admin,
    reads_everything,
    role_of,
)
from ..errors import ClientError, DetailError, json_response
from ..guardrails.call import PRINCIPAL
from ..store.schema import Row, membership_id
from .bodies import Body, Query, Reply, parse_body, parse_query, reply
from .budgets import (BUDGET_FIELDS, BUDGETS, BudgetFields, all_rows, budget_view, create_budget,
                      linked_budget, linked_budgets, rows_where_in, update_budget)
from .context import Admin, gated
from .memberships import (
    MembershipView,
    NamesUser,
    ensure_membership,
    is_org_admin,
    resolve_user,
    set_member_budget,
    user_view,
)
from .tables import Table, actor, wire_view
from .teams import TeamView, delete_teams, team_view



class OrgFields(BudgetFields):
    organization_alias: str | None = None
    models: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class NewOrg(OrgFields):
    organization_alias: str = Field(min_length=1)  # type: ignore[assignment]
    organization_id: str | None = Field(default=None, min_length=1)
    budget_id: str | None = None


class UpdateOrg(OrgFields):
    organization_id: str = Field(min_length=1)
    spend: float | None = Field(default=None, ge=0)
    litellm_budget_table: BudgetFields | None = None


class OrgQuery(Query):
    organization_id: str


class DeleteOrgs(Body):
    organization_ids: list[str] = Field(min_length=1)


OrgRole = Literal["org_admin", "internal_user", "internal_user_viewer"]


class OrgMember(NamesUser):
    role: OrgRole


class MemberAdd(Body):
    organization_id: str = Field(min_length=1)
    member: OrgMember | list[OrgMember]
    max_budget_in_organization: float | None = Field(default=None, ge=0)


class MemberRef(NamesUser):
    organization_id: str = Field(min_length=1)
    role: OrgRole | None = None
    max_budget_in_organization: float | None = Field(default=None, ge=0)


class OrgMemberView(MembershipView):
    organization_id: str
    user_role: OrgRole


class OrgView(Reply):
    organization_id: str
    organization_alias: str | None
    budget_id: str | None
    models: list[str] = Field(description="Models its teams may use; [] is every model")
    spend: float
    metadata: dict[str, Any]
    litellm_budget_table: dict[str, Any] | None
    members: list[OrgMemberView]
    teams: list[TeamView]
    created_at: str
    updated_at: str


class OrgList(RootModel[list[OrgView]]):
    pass


def org_view(row: Row) -> dict[str, Any]:
    return {**wire_view(row, {}), "users": None, "litellm_budget_table": None,
            "object_permission": None, "object_permission_id": None}


def member_view(row: Row, budget: Row | None = None) -> dict[str, Any]:
    view = wire_view(row, {})
    del view["membership_id"]
    return {**view, "user": None, "litellm_budget_table": budget_view(budget)}


ORGS = Table("organizations", "organization", org_view)
ORG_MEMBERS = Table("organization_members", "organization_member", member_view)


def setup(app: web.Application) -> None:
    app.router.add_post("/organization/new", new)
    app.router.add_patch("/organization/update", update)
    app.router.add_get("/organization/info", info)
    app.router.add_get("/organization/list", listing)
    app.router.add_delete("/organization/delete", delete)
    app.router.add_post("/organization/member_add", member_add)
    app.router.add_patch("/organization/member_update", member_update)
    app.router.add_delete("/organization/member_delete", member_delete)


@gated(Rule.SELF)
async def new(request: web.Request, admin: Admin) -> web.Response:
    if not is_proxy_admin(request[PRINCIPAL]):
        role = role_of(request[PRINCIPAL])
        if role == NO_ROLE:
            raise DetailError(401, {"error": f"Only admins can create orgs. Your role is = "
                                             f"{role}"})
        raise ClientError(401, f"Only proxy admins can create new organizations. You are {role}",
                          kind="auth_error", param="None")
    body = await parse_body(request, NewOrg)
    org_id = body.organization_id or str(uuid.uuid4())
    if await admin.store.get_row("organizations", org_id) is not None:
        raise ClientError(400, f"Organization already exists: {org_id}",
                          param="organization_id")
    budget_id = body.budget_id
    if budget_id is not None:
        await BUDGETS.fetch(admin, budget_id, budget_id)
    else:  # as in LiteLLM, every organization has a budget row
        budget_id = (await create_budget(request, body,
                                         body.model_fields_set & BUDGET_FIELDS))["budget_id"]
    now = time.time()
    row = await ORGS.create(request, org_id, {
        "organization_id": org_id, "organization_alias": body.organization_alias,
        "budget_id": budget_id, "models": body.models, "metadata": body.metadata,
        "created_by": actor(request), "updated_by": actor(request),
        "created_at": now, "updated_at": now})
    return json_response(org_view(row))


@gated(Rule.ADMIN)
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateOrg)
    org = await _org(admin, body.organization_id)
    fields = body.model_fields_set
    changes = body.model_dump(include=fields & {"organization_alias", "models", "metadata",
                                                "spend"})
    nested = body.litellm_budget_table
    budget_body, budget_fields = (nested, nested.model_fields_set) if nested is not None \
        else (body, fields & BUDGET_FIELDS)
    if budget_fields:
        await update_budget(request, org["budget_id"], budget_body, budget_fields)
    if changes:
        org = await ORGS.update(request, org["organization_id"], org["organization_id"],
                                {**changes, "updated_by": actor(request)})
    return json_response(await _full_view(admin, org))


@gated(Rule.SELF)
async def info(request: web.Request, admin: Admin) -> web.Response:
    org_id = parse_query(request, OrgQuery).organization_id
    org = await _org(admin, org_id)
    await _require_org_admin(request, org_id, "/organization/info")
    return reply(OrgView, await _full_view(admin, org))


@gated(Rule.SELF)
async def listing(request: web.Request, admin: Admin) -> web.Response:
    principal = request[PRINCIPAL]
    orgs = await all_rows(admin, "organizations")
    if not reads_everything(principal):
        mine = {m["organization_id"] for m in await all_rows(
            admin, "organization_members", {"user_id": principal.user_id})} \
            if principal.user_id else set()
        orgs = [o for o in orgs if o["organization_id"] in mine]
    return reply(OrgList, await _full_views(admin, orgs))


@gated(Rule.SELF)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    if not is_proxy_admin(request[PRINCIPAL]):
        raise DetailError(401, {"error": "Only proxy admins can delete organizations"})
    body = await parse_body(request, DeleteOrgs)
    orgs = []
    for org_id in body.organization_ids:
        org = await admin.store.get_row("organizations", org_id)
        if org is None:
            raise DetailError(404, {"error": f"Organization={org_id} not found"})
        orgs.append(org)
    # Its teams (with their keys) and every membership go with it.
    org_ids = [org["organization_id"] for org in orgs]
    await delete_teams(request, await all_rows(admin, "teams", {"organization_id": org_ids}))
    await ORG_MEMBERS.remove(request, await all_rows(admin, "organization_members",
                                                     {"organization_id": org_ids}))
    deleted = await ORGS.remove(request, orgs)
    return json_response([org_view(row) for row in deleted])


@gated(Rule.MEMBERS)
async def member_add(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, MemberAdd)
    if await admin.store.get_row("organizations", body.organization_id) is None:
        raise ClientError(404, f"Organization not found for organization_id="
                               f"{body.organization_id}", kind="auth_error", param="None")
    await _require_org_admin(request, body.organization_id, "/organization/member_add")
    members = body.member if isinstance(body.member, list) else [body.member]
    users, memberships = [], []
    for member in members:
        user = await resolve_user(request, member)
        row = await _set_membership(request, body.organization_id, user["user_id"],
                                    member.role, body.max_budget_in_organization)
        users.append(user_view(user))
        memberships.append(await _member_view(admin, row))
    return json_response({"organization_id": body.organization_id, "updated_users": users,
                          "updated_organization_memberships": memberships})


@gated(Rule.MEMBERS)
async def member_update(request: web.Request, admin: Admin) -> web.Response:
    body, row = await _member_request(request, admin)
    row = await _set_membership(request, body.organization_id, row["user_id"], body.role,
                                body.max_budget_in_organization)
    return json_response(await _member_view(admin, row))


@gated(Rule.MEMBERS)
async def member_delete(request: web.Request, admin: Admin) -> web.Response:
    _, row = await _member_request(request, admin)
    await ORG_MEMBERS.delete(request, {row["membership_id"]: row["membership_id"]})
    return json_response(await _member_view(admin, row))


async def _member_request(request: web.Request, admin: Admin) -> tuple[MemberRef, Row]:
    """The body of a route changing a membership, and that membership, once the caller may."""
    body = await parse_body(request, MemberRef)
    await _org(admin, body.organization_id)
    await _require_org_admin(request, body.organization_id, request.path)
    return body, await _membership(admin, body)


async def _org(admin: Admin, org_id: str) -> Row:
    org = await admin.store.get_row("organizations", org_id)
    if org is None:
        raise DetailError(404, {"error": "Organization not found"})
    return org


async def _full_view(admin: Admin, org: Row) -> dict[str, Any]:
    return (await _full_views(admin, [org]))[0]


async def _full_views(admin: Admin, orgs: list[Row]) -> list[dict[str, Any]]:
    """Organizations with their budgets, members and teams, in a few queries whatever their
    number."""
    ids = {org["organization_id"] for org in orgs}
    members = await rows_where_in(admin, "organization_members", "organization_id", ids)
    teams = await rows_where_in(admin, "teams", "organization_id", ids)
    budgets = await linked_budgets(admin, [*orgs, *members])
    return [{**org_view(org), "litellm_budget_table": budget_view(budgets.get(org["budget_id"])),
             "members": [member_view(m, budgets.get(m["budget_id"])) for m in members
                         if m["organization_id"] == org["organization_id"]],
             "teams": [team_view(t) for t in teams
                       if t["organization_id"] == org["organization_id"]]}
            for org in orgs]


async def _member_view(admin: Admin, row: Row) -> dict[str, Any]:
    return member_view(row, await linked_budget(admin, row))


async def _require_org_admin(request: web.Request, org_id: str, route: str) -> None:
    principal = request[PRINCIPAL]
    if is_proxy_admin(principal) or (role_of(principal) == PROXY_ADMIN_VIEWER
                                     and request.method == "GET"):
        return
    if not await is_org_admin(request, org_id):
        raise ClientError(403, f"User={principal.user_id} is not an admin of organization="
                               f"{org_id}; route={route}", kind="auth_error", param="None")


async def _membership(admin: Admin, ref: MemberRef) -> Row:
    user_id = ref.user_id
    if user_id is None:
        found = await admin.store.list_rows("users", where={"user_email": ref.user_email},
                                            limit=1)
        user_id = found[0]["user_id"] if found else ""
    row = await admin.store.get_row("organization_members",
                                    membership_id(ref.organization_id, user_id))
    if row is None:
        raise DetailError(400, {"error": f"User={user_id} is not a member of organization="
                                         f"{ref.organization_id}"})
    return row


async def _set_membership(request: web.Request, org_id: str, user_id: str, role: str | None,
                          max_budget: float | None) -> Row:
    row = await ensure_membership(request, ORG_MEMBERS, "organization_id", org_id, user_id,
                                  user_role=role or INTERNAL_USER)
    if role is not None and role != row["user_role"]:
        ident = row["membership_id"]
        row = await ORG_MEMBERS.update(request, ident, ident, {"user_role": role})
    if max_budget is not None:
        row = await set_member_budget(request, ORG_MEMBERS, row,
                                      BudgetFields(max_budget=max_budget), {"max_budget"})
    return row


