"""The audit rows kept when ``store_audit_logs: true``: ``GET /audit`` (a page, with LiteLLM's
filters), ``GET /audit/{id}``, and ``GET /audit/logs`` (newest first, optionally for one
object), for proxy admins and their viewers."""

from __future__ import annotations

import math
from datetime import date, timedelta

from aiohttp import web
from pydantic import Field

from ..access.roles import Rule
from ..errors import ClientError, json_response
from .bodies import Day, Query, RowsQuery, day_start, parse_query
from .context import Admin, gated

MAX_PAGE_SIZE = 100
# Filters that match a column exactly.
COLUMNS = ("changed_by", "changed_by_api_key", "action", "table_name", "object_id")
# Filters that match a field of the row's before or updated values: query name -> field.
INSIDE = {"object_team_id": "team_id", "object_key_hash": "token"}
SORTABLE = ("updated_at", "changed_by", "action", "table_name", "object_id")


class AuditPageQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE)
    sort_by: str = Field(default="updated_at", description=f"One of {', '.join(SORTABLE)}")
    sort_order: str = Field(default="desc", description="asc or desc")
    start_date: Day | None = Field(default=None, description="Changes from this day on")
    end_date: Day | None = Field(default=None, description="Changes up to this day, included")
    changed_by: str | None = None
    changed_by_api_key: str | None = None
    action: str | None = Field(default=None, description="created, updated, deleted, ...")
    table_name: str | None = None
    object_id: str | None = None
    object_team_id: str | None = Field(default=None, description="Changes of rows whose "
                                                                  "team_id was this")
    object_key_hash: str | None = Field(default=None, description="Changes of rows whose "
                                                                   "token was this key hash")


class AuditLogsQuery(RowsQuery):
    object_id: str | None = Field(default=None, description="Only this object's changes")


def setup(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/audit/logs", audit_logs)
    app.router.add_get("/audit/{id}", audit_row)


@gated(Rule.ADMIN_READ)
async def audit_page(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, AuditPageQuery)
    page, size, sort_by = query.page, query.page_size, query.sort_by
    if sort_by not in SORTABLE:
        raise ClientError(400, f"Invalid sort column. Must be one of: {', '.join(SORTABLE)}",
                          param="sort_by")
    order = query.sort_order.lower()
    if order not in ("asc", "desc"):
        raise ClientError(400, "sort_order must be asc or desc", param="sort_order")
    given = query.model_dump(exclude_none=True)
    rows, total = await admin.store.audit_page(
        {name: given[name] for name in COLUMNS if name in given},
        since=_iso(query.start_date),
        before=_iso(query.end_date, days=1),
        inside={field: given[name] for name, field in INSIDE.items() if name in given},
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
    query = parse_query(request, AuditLogsQuery)
    return json_response(await admin.store.audit_logs(object_id=query.object_id,
                                                      limit=query.limit))


def _iso(day: date | None, *, days: int = 0) -> str | None:
    """A day's start (or, ``days`` later, the next's: an end date counts whole) as the ISO
    text audit times are compared with; None past the last day a date can name."""
    try:
        return None if day is None else (day_start(day) + timedelta(days=days)).isoformat()
    except OverflowError:
        return None
