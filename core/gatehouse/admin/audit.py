"""``GET /audit/logs``: the audit rows kept when ``store_audit_logs: true``, newest first,
optionally for one key hash or team id (``?object_id=``)."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response
from .bodies import query_int
from .context import Admin, admin_route

MAX_LIMIT = 1000


def setup(app: web.Application) -> None:
    app.router.add_get("/audit/logs", audit_logs)


@admin_route
async def audit_logs(request: web.Request, admin: Admin) -> web.Response:
    limit = query_int(request, "limit", 100, low=1, high=MAX_LIMIT)
    return json_response(await admin.store.audit_logs(
        object_id=request.query.get("object_id") or None, limit=limit))
