"""End users (customers): ``/customer/*``, each also at ``/end_user/*``, and LiteLLM's
``/user/unblock``.

An end user is whoever a call is made for (the body's ``user``): the gateway adds each call's
cost to their row, making it on first sight. A blocked end user, or one over the budget their
row links to, is refused before any guardrail or upstream sees the call, whatever key is used.
Gateways see a change within a second (rows are cached like keys).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, model_validator

from ..access.roles import Rule, reads_everything, role_of
from ..errors import ClientError, DetailError, json_response
from ..guardrails.call import PRINCIPAL
from ..store.schema import Row
from .bodies import Body, Query, parse_body, parse_query
from .budgets import (BUDGET_FIELDS, BUDGETS, BudgetFields, all_rows, budget_view, create_budget,
                      linked_budget, update_budget)
from .context import Admin, gated
from .models import MODELS
from .tables import Table, record_change

UserId = Annotated[str, Field(min_length=1)]


class UserIds(Body):
    user_ids: list[UserId] = Field(min_length=1)


class CustomerFields(BudgetFields):
    alias: str | None = None
    blocked: bool = False
    budget_id: str | None = None
    spend: float | None = Field(default=None, ge=0)
    allowed_model_region: Literal["eu", "us"] | None = None
    default_model: str | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_budget(self) -> CustomerFields:
        if self.max_budget is not None and self.budget_id is not None:
            raise ValueError("Set either 'max_budget' or 'budget_id', not both.")
        return self


class NewCustomer(CustomerFields):
    user_id: UserId


class UpdateCustomer(CustomerFields):
    user_id: UserId


CUSTOMER_COLUMNS = ("alias", "blocked", "budget_id", "spend", "allowed_model_region",
                    "default_model", "metadata")


def customer_view(row: Row, budget: Row | None = None) -> dict[str, Any]:
    return {"user_id": row["user_id"], "alias": row["alias"], "spend": row["spend"],
            "allowed_model_region": row["allowed_model_region"],
            "default_model": row["default_model"], "budget_id": row["budget_id"],
            "litellm_budget_table": budget_view(budget), "blocked": row["blocked"]}


END_USERS = Table("end_users", "end_user", customer_view)


def setup(app: web.Application) -> None:
    for prefix in ("/customer", "/end_user"):
        app.router.add_post(f"{prefix}/new", new)
        app.router.add_get(f"{prefix}/info", info)
        app.router.add_post(f"{prefix}/update", update)
        app.router.add_post(f"{prefix}/delete", delete)
        app.router.add_get(f"{prefix}/list", listing)
        app.router.add_post(f"{prefix}/block", block)
        app.router.add_post(f"{prefix}/unblock", unblock)
    app.router.add_post("/user/unblock", unblock)


@gated(Rule.ADMIN)
async def new(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, NewCustomer)
    if await admin.store.get_row("end_users", body.user_id) is not None:
        raise ClientError(400, f"Customer already exists, passed user_id={body.user_id}. "
                               f"Please pass a new user_id.", kind="bad_request",
                          param="user_id")
    _check_default_model(request, body.default_model)
    fields = body.model_fields_set
    budget_id = body.budget_id
    if budget_id is not None:
        await BUDGETS.fetch(admin, budget_id, budget_id)
    elif fields & BUDGET_FIELDS:
        budget_id = (await create_budget(request, body, fields))["budget_id"]
    now = time.time()
    row = {"user_id": body.user_id, **body.model_dump(include=set(CUSTOMER_COLUMNS)),
           "spend": body.spend or 0.0, "metadata": body.metadata or {},
           "budget_id": budget_id, "created_at": now, "updated_at": now}
    created = await END_USERS.create(request, body.user_id, row)
    return json_response(await _view(admin, created))


class CustomerQuery(Query):
    # Not required: without it, LiteLLM's 400 for an unknown end user, as with an empty one.
    end_user_id: str | None = None


@gated(Rule.ADMIN_READ)
async def info(request: web.Request, admin: Admin) -> web.Response:
    user_id = parse_query(request, CustomerQuery).end_user_id or ""
    row = await admin.store.get_row("end_users", user_id) if user_id else None
    if row is None:
        raise DetailError(400, {"error": f"End User Id={user_id} does not exist in db"})
    view = await _view(admin, row)
    del view["budget_id"]
    return json_response(view)


@gated(Rule.ADMIN)
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateCustomer)
    row = await admin.store.get_row("end_users", body.user_id)
    if row is None:
        raise ClientError(400, f"{{'error': 'End User Id={body.user_id} does not exist in "
                               f"db'}}", kind="internal_error")
    # Quirk (LiteLLM's): empty values are dropped, so blocked: false or max_budget: 0 change
    # nothing here -- /customer/unblock lifts a block.
    fields = {name for name in body.model_fields_set - {"user_id"}
              if getattr(body, name) not in (None, [], {}, 0, False)}
    changes = body.model_dump(include=fields & set(CUSTOMER_COLUMNS))
    _check_default_model(request, changes.get("default_model"))
    budget_fields = fields & BUDGET_FIELDS
    if "budget_id" in changes:
        await BUDGETS.fetch(admin, changes["budget_id"], changes["budget_id"])
    elif budget_fields and row["budget_id"] is not None:
        await update_budget(request, row["budget_id"], body, budget_fields)
    elif budget_fields:
        changes["budget_id"] = (await create_budget(request, body, budget_fields))["budget_id"]
    if changes:
        row = await END_USERS.update(request, body.user_id, body.user_id, changes)
    return json_response(await _view(admin, row))


@gated(Rule.ADMIN)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UserIds)
    # A partial delete deletes nothing; LiteLLM answers it with a 500, here it is the client's
    # mistake it is.
    missing = [u for u in body.user_ids if await admin.store.get_row("end_users", u) is None]
    if missing:
        raise ClientError(404, f"Failed deleting all customer data. End User Id(s) not found: "
                               f"{missing}", kind="not_found_error", param="user_ids")
    await END_USERS.delete(request, {u: u for u in body.user_ids})
    return json_response({"deleted_customers": len(body.user_ids),
                          "message": f"Successfully deleted customers with ids: "
                                     f"{body.user_ids}"})


@gated(Rule.SELF)
async def listing(request: web.Request, admin: Admin) -> web.Response:
    _require_admin_or_viewer(request)
    return json_response([await _view(admin, row) for row in await all_rows(admin, "end_users")])


@gated(Rule.ADMIN)
async def block(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UserIds)
    rows = await _set_blocked(request, admin, body.user_ids, True)
    return json_response({"blocked_users": [await _view(admin, row) for row in rows]})


@gated(Rule.ADMIN)
async def unblock(request: web.Request, admin: Admin) -> web.Response:
    """Clears the end users' block. (LiteLLM's only edits its in-memory list and leaves the
    stored flag set; a script calling unblock means it.)"""
    body = await parse_body(request, UserIds)
    await _set_blocked(request, admin, body.user_ids, False)
    # The config's blocked_user_list is not the API's to lift; say so rather than pretend.
    from_config = sorted(set(body.user_ids) & admin.principals.config_blocked)
    return json_response({"blocked_users": sorted(admin.principals.config_blocked),
                          "unblocked_users": body.user_ids,
                          "still_blocked_by_config": from_config})


async def _set_blocked(request: web.Request, admin: Admin, user_ids: list[str],
                       blocked: bool) -> list[Row]:
    """Block or unblock end users (making those not seen yet), each change audited."""
    before = {row["user_id"]: row for row in await all_rows(admin, "end_users",
                                                            {"user_id": user_ids})}
    rows = await admin.store.set_end_users_blocked(user_ids, blocked)
    for row in rows:
        await admin.principals.forget("end_user", row["user_id"])
        old = before.get(row["user_id"])
        if old is None:
            await record_change(request, "end_users", "created", row["user_id"], None,
                                customer_view(row))
        elif old["blocked"] != blocked:
            await record_change(request, "end_users", "updated", row["user_id"],
                                customer_view(old), {"blocked": blocked})
    return rows


def _check_default_model(request: web.Request, name: str | None) -> None:
    """A default model the gateway does not serve would send the end user's model-less calls
    nowhere."""
    served = request.app[MODELS].router.routes.model_names
    if name is not None and name not in served:
        raise ClientError(422, repr({"error": f"Default Model not on proxy. Configure via "
                                              f"`/model/new` or config.yaml. Default_model="
                                              f"{name}, proxy_model_names={list(served)}"}),
                          kind="internal_error", param="default_model")


def _require_admin_or_viewer(request: web.Request) -> None:
    principal = request[PRINCIPAL]
    if not reads_everything(principal):
        raise DetailError(401, {"error": f"Admin-only endpoint. Your user role="
                                         f"{role_of(principal)}"})


async def _view(admin: Admin, row: Row) -> dict[str, Any]:
    return customer_view(row, await linked_budget(admin, row))
