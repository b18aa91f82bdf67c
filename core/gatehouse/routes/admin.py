"""What the admin routes share: the master-key gate, strict request parsing, a database outage
as a 503, and the create/update/delete shape of keys and teams.

Keys and teams change only through :class:`Table`, so no route can forget to drop the cached
copy (or a revoked key would keep working) or to leave an audit row.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from .. import audit
from ..appkeys import GATEWAY
from ..config import format_path
from ..errors import ClientError
from ..gateway import Gateway
from ..pipeline import read_json
from ..store import TABLES, Row, StoreUnavailable

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AdminHandler = Callable[[web.Request, Gateway], Awaitable[web.StreamResponse]]


class Body(BaseModel):
    """An admin request body: strict types (``"5"`` is not a budget) and no unknown fields, so
    a misspelt or unsupported field is refused instead of silently doing nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)


def admin_route(handler: AdminHandler) -> Handler:
    """Only the master key passes; a database outage is a 503 rather than a 500."""

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        gateway = request.app[GATEWAY]
        gateway.principals.require_admin(request["principal"])
        try:
            return await handler(request, gateway)
        except StoreUnavailable:
            raise ClientError(503, "The database cannot be reached; try again shortly",
                              kind="service_unavailable") from None

    return route


async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ClientError(400, "Request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = format_path(err["loc"])
        message = {
            "missing": f"Missing required parameter: '{where}'",
            "extra_forbidden": f"Unknown parameter: '{where}'",
        }.get(err["type"], f"Invalid value for '{where}': {err['msg']}")
        raise ClientError(400, message, param=str(err["loc"][0]) if err["loc"] else None
                          ) from None


def query_str(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise ClientError(400, f"Missing required query parameter: '{name}'", param=name)
    return value


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ClientError(400, f"Invalid value for '{name}': expected a whole number from "
                               f"{low} to {high}, got {raw!r}", param=name)
    return value


def iso(epoch: float | None) -> str | None:
    """Times are epoch seconds in the database and ISO 8601 UTC on the wire, as in LiteLLM."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def wire_view(row: Row, renames: dict[str, str]) -> dict[str, Any]:
    """A stored row as the API shows it: LiteLLM's field names, times as ISO 8601."""
    view = {renames.get(column, column): value for column, value in row.items()}
    for column in ("expires", "created_at", "updated_at"):
        if column in view:
            view[column] = iso(view[column])
    return view


@dataclass(frozen=True, slots=True)
class Table:
    """Keys or teams: the same lifecycle over different rows.

    ``view`` is the row as the API shows it; it is also what audit rows hold, and it never
    contains a key's secret (the database never has it).
    """

    kind: Literal["keys", "teams"]
    noun: Literal["key", "team"]
    view: Callable[[Row], dict[str, Any]]

    async def fetch(self, gateway: Gateway, ident: str, shown: str) -> Row:
        row = await gateway.store.get_row(self.kind, ident)
        if row is None:
            raise self._not_found([shown])
        return row

    async def create(self, request: web.Request, ident: str, row: Row) -> Row:
        gateway = request.app[GATEWAY]
        await gateway.store.insert_row(self.kind, row)
        created = await self.fetch(gateway, ident, ident)
        # A lookup of this id before it existed may have cached "no such key".
        await gateway.principals.forget(self.noun, ident)
        await audit.record(request, self.kind, "created", ident, None, self.view(created))
        return created

    async def update(self, request: web.Request, ident: str, shown: str, changes: Row) -> Row:
        gateway = request.app[GATEWAY]
        result = await gateway.store.update_row(self.kind, ident, changes)
        if result is None:
            raise self._not_found([shown])
        before, after = (self.view(row) for row in result)
        await gateway.principals.forget(self.noun, ident)
        changed = {k: v for k, v in after.items() if before.get(k) != v and k != "updated_at"}
        await audit.record(request, self.kind, "updated", ident, before, changed)
        return result[1]

    async def delete(self, request: web.Request, idents: dict[str, str]) -> list[Row]:
        """Delete every row of ``idents`` (id -> how the caller named it), or none of them
        when any is unknown."""
        gateway = request.app[GATEWAY]
        missing = [shown for ident, shown in idents.items()
                   if await gateway.store.get_row(self.kind, ident) is None]
        if missing:
            raise self._not_found(missing)
        deleted = await gateway.store.delete_rows(self.kind, list(idents))
        for row in deleted:
            ident = str(row[TABLES[self.kind][1]])
            await gateway.principals.forget(self.noun, ident)
            await audit.record(request, self.kind, "deleted", ident, self.view(row), {})
        return deleted

    def _not_found(self, shown: list[str]) -> ClientError:
        return ClientError(404, f"{self.noun.capitalize()} not found: {', '.join(shown)}",
                           kind="not_found_error")


def check_guardrails(gateway: Gateway, names: list[str], param: str) -> None:
    """Refuse guardrail names the config does not define: they would silently never run."""
    unknown = [name for name in names if name not in gateway.guardrails]
    if unknown:
        raise ClientError(400, f"Unknown guardrail(s): {', '.join(unknown)}. Configured "
                               f"guardrails: {', '.join(gateway.guardrails) or 'none'}",
                          param=param)
