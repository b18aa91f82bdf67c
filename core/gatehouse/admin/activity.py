"""LiteLLM's daily activity views, which its Usage page reads: ``GET /user/daily/activity``,
``/team/daily/activity``, ``/tag/daily/activity`` and ``/customer/daily/activity`` (also at
``/end_user/daily/activity``).

Each answers ``{"results": [{"date", "metrics", "breakdown"}], "metadata": {totals, paging}}``:
one entry per UTC day, newest first, ``page_size`` days a page, with the day's spend, tokens
and calls in all and broken down by model, key and -- but for the user view -- the team, tag or
customer. The totals cover every day of the range. The database sums the spend rows
(``Store.activity_by_day``); the rows it returns are only arranged here.

Who sees what, as in LiteLLM: proxy admins and their viewers everything; anyone else only the
calls made with their own keys (the user view refuses another user's id), and customers' views
not at all. A call with two tags counts in the tag view under each.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from aiohttp import web
from pydantic import Field

from ..access.roles import Rule, reads_everything, role_of
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..store.schema import Row
from .bodies import parse_query
from .budgets import rows_where_in
from .context import Admin, gated
from .key_views import key_ident
from .spend_reports import DateRange, date_range, day_of

COUNTS = ("spend", "prompt_tokens", "completion_tokens", "api_requests", "successful_requests")


class ActivityQuery(DateRange):
    model: str | None = None
    # A key or its hash.
    api_key: str | None = None
    # Days per page.
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=1000)

    def ids(self) -> list[str]:
        """The entity ids asked for (a comma list); none is every one."""
        return []


class UserActivityQuery(ActivityQuery):
    user_id: str | None = None


class TeamActivityQuery(ActivityQuery):
    team_ids: str | None = None

    def ids(self) -> list[str]:
        return _split(self.team_ids)


class TagActivityQuery(ActivityQuery):
    tags: str | None = None

    def ids(self) -> list[str]:
        return _split(self.tags)


class CustomerActivityQuery(ActivityQuery):
    end_user_ids: str | None = None

    def ids(self) -> list[str]:
        return _split(self.end_user_ids)


def _split(listed: str | None) -> list[str]:
    return [part for part in (listed or "").split(",") if part]


def setup(app: web.Application) -> None:
    app.router.add_get("/user/daily/activity", user_activity)
    app.router.add_get("/team/daily/activity", team_activity)
    app.router.add_get("/tag/daily/activity", tag_activity)
    for prefix in ("/customer", "/end_user"):
        app.router.add_get(f"{prefix}/daily/activity", customer_activity)


@gated(Rule.SELF)
async def user_activity(request: web.Request, admin: Admin) -> web.Response:
    """One user's calls (``user_id``; a caller who is no admin may name only themselves), or
    everyone's for an admin who names nobody."""
    query = parse_query(request, UserActivityQuery)
    principal: Principal = request[PRINCIPAL]
    if not reads_everything(principal) and query.user_id not in (None, principal.user_id):
        raise ClientError(403, "Non-admin users can only view their own spend data",
                          kind="auth_error", param="user_id")
    return await activity(request, admin, None, query, owner=query.user_id)


@gated(Rule.SELF)
async def team_activity(request: web.Request, admin: Admin) -> web.Response:
    return await activity(request, admin, "team", parse_query(request, TeamActivityQuery))


@gated(Rule.SELF)
async def tag_activity(request: web.Request, admin: Admin) -> web.Response:
    return await activity(request, admin, "tag", parse_query(request, TagActivityQuery))


@gated(Rule.SELF)
async def customer_activity(request: web.Request, admin: Admin) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    if not reads_everything(principal):
        raise ClientError(403, f"Admin-only endpoint. Your user role={role_of(principal)}",
                          kind="auth_error")
    return await activity(request, admin, "customer",
                          parse_query(request, CustomerActivityQuery))


async def activity(request: web.Request, admin: Admin, entity: str | None,
                   query: ActivityQuery, *, owner: str | None = None) -> web.Response:
    start, end = date_range(query)
    principal: Principal = request[PRINCIPAL]
    key_hash = key_ident(query.api_key)[0] if query.api_key else None
    if not reads_everything(principal):
        # Their own calls only: those of their keys, or of this key when it has no user.
        owner = principal.user_id
        if owner is None:
            if key_hash not in (None, principal.key_hash):
                return json_response(shaped([], {}, {}, query.page, query.page_size))
            key_hash = principal.key_hash
    rows = await admin.store.activity_by_day(
        start, end, entity=entity, entity_ids=query.ids() or None, model=query.model,
        key_hash=key_hash, owner=owner)
    keys = {row["key_hash"]: {"key_alias": row["key_alias"], "team_id": row["team_id"]}
            for row in await rows_where_in(admin, "keys", "key_hash",
                                           {r["key_hash"] for r in rows if r["key_hash"]})}
    names = await entity_metadata(admin, entity, {r["entity"] for r in rows} if entity else set())
    return json_response(shaped(rows, keys, names, query.page, query.page_size))


async def entity_metadata(admin: Admin, entity: str | None, ids: set[str]
                          ) -> dict[str, dict[str, Any]]:
    """What LiteLLM shows beside an entity's id: a team's alias, a customer's."""
    if entity == "team":
        return {row["team_id"]: {"team_alias": row["team_alias"]}
                for row in await rows_where_in(admin, "teams", "team_id", ids)}
    if entity == "customer":
        return {row["user_id"]: {"alias": row["alias"]}
                for row in await rows_where_in(admin, "end_users", "user_id", ids)}
    return {}


def new_metrics() -> dict[str, Any]:
    return {"spend": 0.0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
            "api_requests": 0, "successful_requests": 0, "failed_requests": 0}


def add(metrics: dict[str, Any], row: Row) -> None:
    for name in COUNTS:
        metrics[name] += row[name] or 0
    metrics["total_tokens"] = metrics["prompt_tokens"] + metrics["completion_tokens"]
    metrics["failed_requests"] = metrics["api_requests"] - metrics["successful_requests"]


def add_to(group: dict[str, Any], name: str, row: Row, metadata: dict[str, Any]) -> None:
    entry = group.setdefault(name, {"metrics": new_metrics(), "metadata": metadata})
    add(entry["metrics"], row)


def shaped(rows: list[Row], keys: dict[str, dict[str, Any]],
           names: dict[str, dict[str, Any]], page: int, page_size: int) -> dict[str, Any]:
    totals = new_metrics()
    days: dict[int, dict[str, Any]] = defaultdict(lambda: {
        "metrics": new_metrics(),
        "breakdown": {"models": {}, "api_keys": {}, "entities": {}}})
    for row in rows:
        add(totals, row)
        day = days[row["day"]]
        add(day["metrics"], row)
        breakdown = day["breakdown"]
        add_to(breakdown["models"], row["model"], row, {})
        if row["key_hash"]:
            add_to(breakdown["api_keys"], row["key_hash"], row,
                   keys.get(row["key_hash"], {"key_alias": None, "team_id": None}))
        if row.get("entity") is not None:
            add_to(breakdown["entities"], row["entity"], row, names.get(row["entity"], {}))
    ordered = sorted(days, reverse=True)
    total_pages = max(1, math.ceil(len(ordered) / page_size))
    shown = ordered[(page - 1) * page_size:page * page_size]
    return {
        "results": [{"date": day_of(day).date().isoformat(), **days[day]} for day in shown],
        "metadata": {"total_spend": totals["spend"],
                     "total_prompt_tokens": totals["prompt_tokens"],
                     "total_completion_tokens": totals["completion_tokens"],
                     "total_tokens": totals["total_tokens"],
                     "total_api_requests": totals["api_requests"],
                     "total_successful_requests": totals["successful_requests"],
                     "total_failed_requests": totals["failed_requests"],
                     "page": page, "total_pages": total_pages, "has_more": page < total_pages},
    }
