"""``/config/pass_through_endpoint``: the pass-through endpoints served (GET), and those kept
in the database, which every gateway sharing it serves within a poll interval (POST, DELETE).
Header values are shown masked: they carry the targets' credentials."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ..access.roles import Rule
from ..config import ConfigError
from ..config.general_settings import PassThroughEndpoint
from ..errors import ClientError, json_response
from ..guardrails.masking import mask
from ..proxy.passthrough import ENV_REF, Endpoint, PassThrough, build
from ..proxy.stored_passthrough import StoredPassThrough
from ..store.schema import Row
from ..store.sealed import Unsealable
from .bodies import Query, parse_body, parse_query
from .context import Admin, admin_route, gated
from .tables import actor, audit_actor

SERVED = web.AppKey("pass_through", PassThrough)
STORED = web.AppKey("stored_pass_through", StoredPassThrough)
PATH = "/config/pass_through_endpoint"


def setup(app: web.Application, served: PassThrough, stored: StoredPassThrough | None) -> None:
    app[SERVED] = served
    if stored is not None:
        app[STORED] = stored
    app.router.add_get(PATH, list_endpoints)
    app.router.add_post(PATH, create_endpoint)
    app.router.add_delete(PATH, delete_endpoint)


def shown_header(value: str) -> str:
    # A reference to a variable names no secret; anything else may be one.
    return value if ENV_REF.fullmatch(value) else mask(value)


def view(entry: PassThroughEndpoint, endpoint_id: str | None) -> dict[str, Any]:
    shown = entry.model_dump()
    shown["headers"] = {name: shown_header(value) for name, value in entry.headers.items()}
    # The config's endpoints are named by their path.
    shown["id"] = endpoint_id or entry.path
    return shown


class EndpointQuery(Query):
    # A stored endpoint's id, or a config endpoint's path.
    endpoint_id: str | None = None


class NamedEndpoint(Query):
    endpoint_id: str


def _named(endpoint_id: str, path: str, row_id: str | None) -> bool:
    return endpoint_id in (path, row_id)


@gated(Rule.ADMIN_READ)
async def list_endpoints(request: web.Request, admin: Admin) -> web.Response:
    wanted = parse_query(request, EndpointQuery).endpoint_id
    endpoints: list[Endpoint] = list(request.app[SERVED].table.endpoints)
    return json_response({"endpoints": [
        view(e.entry, e.endpoint_id) for e in endpoints
        if wanted is None or _named(wanted, e.path, e.endpoint_id)]})


def _stored(request: web.Request) -> StoredPassThrough:
    stored = request.app.get(STORED)
    if stored is None:
        raise ClientError(500, "Prisma client not initialized")
    return stored


@admin_route
async def create_endpoint(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request)
    entry = await parse_body(request, PassThroughEndpoint)
    served = request.app[SERVED]
    problems = []
    if served.table.exact.get(entry.path) is not None or await _row(stored, entry.path):
        problems.append(f"path: a pass-through endpoint for {entry.path} already exists")
    problems += served.problems(entry, "endpoint")
    try:
        build(entry, "endpoint")
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ClientError(400, "Invalid pass-through endpoint: " + "; ".join(problems),
                          param="path" if problems[0].startswith("path") else None)
    row = await stored.add(entry, actor(request))
    shown = view(entry, row["endpoint_id"])
    await admin.audit.record("pass_through_endpoints", "created", row["endpoint_id"], None,
                             shown, changed_by=audit_actor(request))
    return json_response({"endpoints": [shown]})


async def _row(stored: StoredPassThrough, endpoint_id: str) -> Row | None:
    for row in await stored.rows.all():
        if _named(endpoint_id, row["path"], row["endpoint_id"]):
            return row
    return None


async def _row_view(stored: StoredPassThrough, row: Row) -> dict[str, Any]:
    try:
        # Through the store's reader: naming the endpoint model here would have the API docs
        # take it for a body the DELETE route reads.
        return view(stored.entry(row), row["endpoint_id"])
    except (Unsealable, ValidationError):
        # A row this gateway cannot read (never served) can still be deleted.
        return {"id": row["endpoint_id"], "path": row["path"]}


@admin_route
async def delete_endpoint(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request)
    endpoint_id = parse_query(request, NamedEndpoint).endpoint_id
    config_endpoints = request.app[SERVED].config_endpoints
    row = await _row(stored, endpoint_id)
    if row is None:
        if not config_endpoints and not await stored.rows.all():
            raise ClientError(400, "There are no pass-through endpoints setup.")
        if any(e.path == endpoint_id for e in config_endpoints):
            raise ClientError(400, f"Endpoint={endpoint_id} is set in the config file; remove "
                                   f"it there.")
        raise ClientError(400, f"Endpoint={endpoint_id} was not found in pass-through endpoint "
                               f"list.")
    shown = await _row_view(stored, row)
    await stored.delete(row["endpoint_id"])
    await admin.audit.record("pass_through_endpoints", "deleted", row["endpoint_id"], shown, {},
                             changed_by=audit_actor(request))
    return json_response({"endpoints": [shown]})
