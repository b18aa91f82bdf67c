"""Budgets: ``/budget/new``, ``/budget/update``, ``/budget/info``, ``/budget/list``,
``/budget/delete``, ``/budget/settings``.

A budget row is a set of limits that end users, team and organization memberships and
organizations link to by ``budget_id``; a change to it binds all of them from the next call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from typing import Any

from aiohttp import web
from pydantic import Field

from ..access import durations
from ..access.roles import Rule
from ..errors import DetailError, json_response
from ..store.schema import Row
from .bodies import Body, Duration, Limit, Query, parse_body, parse_query
from .context import Admin, gated
from .tables import Table, actor, wire_view

# The fields a budget row holds, as /budget/settings describes them.
SETTINGS = (("max_parallel_requests", "Integer", "Max concurrent requests allowed"),
            ("tpm_limit", "Integer", "Max tokens per minute allowed"),
            ("rpm_limit", "Integer", "Max requests per minute allowed"),
            ("budget_duration", "String", "How often the budget resets (e.g. 30d)"),
            ("max_budget", "Float", "Max spend in USD"),
            ("soft_budget", "Float", "Spend in USD at which an alert is sent"))
# Links LiteLLM shows on a budget row; the rows that link to a budget name it, not the other way.
RELATIONS = ("organization", "keys", "end_users", "tags", "team_membership",
             "organization_membership")


def with_reset(columns: Row, now: float, *, aligned: bool) -> Row:
    """``columns`` with the ``budget_reset_at`` their ``budget_duration`` leads to: calendar
    aligned for users and teams, from now for budget rows (as LiteLLM sets each)."""
    if "budget_duration" not in columns:
        return columns
    duration = columns["budget_duration"]
    reset = None if not duration else (durations.next_reset if aligned else durations.after)(
        duration, now)
    return {**columns, "budget_reset_at": reset}


class BudgetFields(Body):
    max_budget: float | None = Field(default=None, ge=0)
    soft_budget: float | None = Field(default=None, ge=0)
    max_parallel_requests: Limit | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    model_max_budget: dict[str, Any] | None = None
    budget_duration: Duration | None = None


BUDGET_FIELDS = frozenset(BudgetFields.model_fields)


class NewBudget(BudgetFields):
    budget_id: str | None = Field(default=None, min_length=1)


class UpdateBudget(BudgetFields):
    budget_id: str | None = None


class BudgetIds(Body):
    budgets: list[str]


class DeleteBudget(Body):
    id: str = Field(min_length=1)


def budget_view(row: Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {**wire_view(row, {}), **dict.fromkeys(RELATIONS)}


BUDGETS = Table("budgets", "budget", budget_view)


def budget_columns(body: BudgetFields, fields: set[str], now: float) -> Row:
    """The budget fields ``fields`` names, with the reset time a duration leads to (from now,
    as LiteLLM sets it for budget rows)."""
    columns = body.model_dump(include=fields & BUDGET_FIELDS)
    if "model_max_budget" in columns and columns["model_max_budget"] is None:
        columns["model_max_budget"] = {}
    return with_reset(columns, now, aligned=False)


async def create_budget(request: web.Request, body: BudgetFields, fields: set[str],
                        budget_id: str | None = None) -> Row:
    now = time.time()
    budget_id = budget_id or str(uuid.uuid4())
    row = {"budget_id": budget_id, **budget_columns(body, fields, now),
           "created_by": actor(request), "updated_by": actor(request),
           "created_at": now, "updated_at": now}
    return await BUDGETS.create(request, budget_id, row)


async def update_budget(request: web.Request, budget_id: str, body: BudgetFields,
                        fields: set[str]) -> Row:
    changes = {**budget_columns(body, fields, time.time()), "updated_by": actor(request)}
    return await BUDGETS.update(request, budget_id, budget_id, changes)


def setup(app: web.Application) -> None:
    app.router.add_post("/budget/new", new)
    app.router.add_post("/budget/update", update)
    app.router.add_post("/budget/info", info)
    app.router.add_get("/budget/list", listing)
    app.router.add_post("/budget/delete", delete)
    app.router.add_get("/budget/settings", settings)


@gated(Rule.ADMIN)
async def new(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, NewBudget)
    if body.budget_id and await admin.store.get_row("budgets", body.budget_id) is not None:
        raise DetailError(400, {"error": f"Budget already exists, passed budget_id="
                                         f"{body.budget_id}"})
    row = await create_budget(request, body, body.model_fields_set, body.budget_id)
    return json_response(budget_view(row))


@gated(Rule.ADMIN)
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateBudget)
    if not body.budget_id:
        raise DetailError(400, {"error": "budget_id is required"})
    row = await update_budget(request, body.budget_id, body, body.model_fields_set)
    return json_response(budget_view(row))


@gated(Rule.ADMIN_READ)
async def info(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, BudgetIds)
    if not body.budgets:
        raise DetailError(400, {"error": "Specify list of budget id's to query. Passed in=[]"})
    rows = [await admin.store.get_row("budgets", budget_id) for budget_id in body.budgets]
    return json_response([budget_view(row) for row in rows if row is not None])


@gated(Rule.ADMIN_READ)
async def listing(request: web.Request, admin: Admin) -> web.Response:
    return json_response([budget_view(row) for row in await all_rows(admin, "budgets")])


@gated(Rule.ADMIN)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, DeleteBudget)
    deleted = await BUDGETS.delete(request, {body.id: body.id})
    return json_response(budget_view(deleted[0]))


class BudgetQuery(Query):
    budget_id: str


@gated(Rule.ADMIN_READ)
async def settings(request: web.Request, admin: Admin) -> web.Response:
    budget_id = parse_query(request, BudgetQuery).budget_id
    row = await BUDGETS.fetch(admin, budget_id, budget_id)
    return json_response([
        {"field_name": name, "field_type": kind, "field_description": about,
         "field_value": row.get(name), "stored_in_db": True, "field_default_value": None,
         "premium_field": False, "nested_fields": None}
        for name, kind, about in SETTINGS])


PAGE = 500


async def linked_budget(admin: Admin, row: Row) -> Row | None:
    """The budget row ``row`` (a key, end user, organization or membership) links to."""
    return await admin.store.get_row("budgets", row["budget_id"]) if row.get("budget_id") \
        else None


async def linked_budgets(admin: Admin, rows: list[Row]) -> dict[str, Row]:
    """The budget rows ``rows`` link to, by id, read in one go."""
    ids = {row["budget_id"] for row in rows if row.get("budget_id")}
    return {b["budget_id"]: b for b in await rows_where_in(admin, "budgets", "budget_id", ids)}


async def rows_where_in(admin: Admin, kind: str, column: str, values: Collection[str]
                        ) -> list[Row]:
    """The rows whose ``column`` is one of ``values``: a query per PAGE values rather than one
    per value (and none for no values)."""
    ordered = sorted(values)
    rows: list[Row] = []
    for start in range(0, len(ordered), PAGE):
        rows += await all_rows(admin, kind, {column: ordered[start:start + PAGE]})
    return rows


async def all_rows(admin: Admin, kind: str, where: Row | None = None) -> list[Row]:
    """Every row of a table (or those matching ``where``), read a page at a time."""
    rows: list[Row] = []
    while True:
        page = await admin.store.list_rows(kind, where=where, limit=PAGE, offset=len(rows))
        rows += page
        if len(page) < PAGE:
            return rows
