"""The audit rows kept when ``store_audit_logs: true``: ``GET /audit`` (a page, with LiteLLM's
filters), ``GET /audit/{id}``, and ``GET /audit/logs`` (newest first, optionally for one
object), for proxy admins and their viewers."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from aiohttp import web

from ..access.roles import Rule
from ..errors import ClientError, json_response
from .bodies import query_day, query_int
from .context import Admin, gated

MAX_LIMIT = 1000
MAX_PAGE_SIZE = 100
# Filters that match a column exactly.
COLUMNS = ("changed_by", "changed_by_api_key", "action", "table_name", "object_id")
# Filters that match a field of the row's before or updated values: query name -> field.
INSIDE = {"object_team_id": "team_id", "object_key_hash": "token"}
SORTABLE = ("updated_at", "changed_by", "action", "table_name", "object_id")


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/audit/logs", audit_logs)
    app.router.add_get("/audit/{id}", audit_row)


@gated(Rule.ADMIN_READ)
async def audit_page(request: web.Request, admin: Admin) -> web.Response:
    query = request.query
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    size = query_int(request, "page_size", 10, low=1, high=MAX_PAGE_SIZE)
    sort_by = query.get("sort_by", "updated_at")
    if sort_by not in SORTABLE:
        raise ClientError(400, f"Invalid sort column. Must be one of: {', '.join(SORTABLE)}",
                          param="sort_by")
    order = query.get("sort_order", "desc").lower()
    if order not in ("asc", "desc"):
        raise ClientError(400, "sort_order must be asc or desc", param="sort_order")
    rows, total = await admin.store.audit_page(
        {name: query[name] for name in COLUMNS if query.get(name)},
        since=_iso(query_day(request, "start_date")),
        before=_iso(query_day(request, "end_date"), days=1),
        inside={field: query[name] for name, field in INSIDE.items() if query.get(name)},
        order_by=sort_by, descending=order == "desc", limit=size, offset=(page - 1) * size)
    return json_response({"audit_logs": rows, "total": total, "page": page, "page_size": size,
                          "total_pages": math.ceil(total / size)})


@gated(Rule.ADMIN_READ)
async def audit_row(request: web.Request, admin: Admin) -> web.Response:
    audit_id = request.match_info["id"]
    row = await admin.store.audit_row(audit_id)
    if row is None:
        raise ClientError(404, f"Audit log with ID {audit_id} not found",
                          kind="not_found_error", param="id")
    return json_response(row)


@gated(Rule.ADMIN_READ)
async def audit_logs(request: web.Request, admin: Admin) -> web.Response:
    limit = query_int(request, "limit", 100, low=1, high=MAX_LIMIT)
    return json_response(await admin.store.audit_logs(
        object_id=request.query.get("object_id") or None, limit=limit))


def _iso(day: datetime | None, *, days: int = 0) -> str | None:
    """A day's start (or, ``days`` later, the next's: an end date counts whole) as the ISO
    text audit times are compared with; None past the last day a date can name."""
    try:
        return None if day is None else (day + timedelta(days=days)).isoformat()
    except OverflowError:
        return None
