"""Keys and teams as the API shows them (LiteLLM's field names, ISO 8601 times), and their one
create/update/delete lifecycle.

Keys and teams change only through :class:`Table`, so no route can forget to drop the cached
copy (or a revoked key would keep working) or to leave an audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..errors import ClientError
from ..guardrails.call import PRINCIPAL
from ..store.audit import Action
from ..store.schema import Row, TABLES
from .context import ADMIN, Admin

# A UI acting for a person names them in this header; otherwise only the master key can have
# made the change.
CHANGED_BY_HEADER = "litellm-changed-by"


# LiteLLM's name for the user the master key acts as.
MASTER_USER = "default_user_id"


def actor(request: web.Request) -> str:
    """The user a caller acts as, and who makes a change as ``created_by`` / ``updated_by``
    record it: the calling key's user, or the master key's ``default_user_id``."""
    return request[PRINCIPAL].user_id or MASTER_USER


def iso(epoch: float | None) -> str | None:
    """Times are epoch seconds in the database and ISO 8601 UTC on the wire, as in LiteLLM."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def wire_view(row: Row, renames: dict[str, str]) -> dict[str, Any]:
    """A stored row as the API shows it: LiteLLM's field names, times as ISO 8601."""
    view = {renames.get(column, column): value for column, value in row.items()}
    for column in ("expires", "created_at", "updated_at", "budget_reset_at", "key_rotation_at",
                   "last_rotation_at"):
        if column in view:
            view[column] = iso(view[column])
    return view


@dataclass(frozen=True, slots=True)
class Table:
    """Keys, teams, users, end users, budgets, organizations and memberships: the same
    lifecycle over different rows.

    ``view`` is the row as the API shows it; it is also what audit rows hold, and it never
    contains a key's secret (the database never has it).
    """

    kind: str  # a table of store.database.TABLES
    noun: str  # what the API and the principals' caches call one row
    view: Callable[[Row], dict[str, Any]]

    async def fetch(self, admin: Admin, ident: str, shown: str) -> Row:
        row = await admin.store.get_row(self.kind, ident)
        if row is None:
            raise self._not_found([shown])
        return row

    async def create(self, request: web.Request, ident: str, row: Row) -> Row:
        admin = request.app[ADMIN]
        await admin.store.insert_row(self.kind, row)
        created = await self.fetch(admin, ident, ident)
        # A lookup of this id before it existed may have cached "no such key".
        await admin.principals.forget(self.noun, ident)
        await self._audit(request, "created", ident, None, self.view(created))
        return created

    async def update(self, request: web.Request, ident: str, shown: str, changes: Row, *,
                     new_ident: str | None = None) -> Row:
        """Apply ``changes``; with ``new_ident``, the row takes that id too (and the old one
        stops naming anything)."""
        admin = request.app[ADMIN]
        result = await admin.store.update_row(self.kind, ident, changes, new_ident=new_ident)
        if result is None:
            raise self._not_found([shown])
        before, after = (self.view(row) for row in result)
        for name in {ident, new_ident or ident}:
            await admin.principals.forget(self.noun, name)
        changed = {k: v for k, v in after.items() if before.get(k) != v and k != "updated_at"}
        await self._audit(request, "updated", ident, before, changed)
        return result[1]

    async def delete(self, request: web.Request, idents: dict[str, str]) -> list[Row]:
        """Delete every row of ``idents`` (id -> how the caller named it), or none of them
        when any is unknown."""
        found = await request.app[ADMIN].store.list_rows(
            self.kind, where={self.pk: list(idents)}, limit=len(idents))
        present = {str(row[self.pk]) for row in found}
        missing = [shown for ident, shown in idents.items() if ident not in present]
        if missing:
            raise self._not_found(missing)
        return await self.remove(request, found)

    async def remove(self, request: web.Request, rows: list[Row]) -> list[Row]:
        """Delete rows the caller has just read; those already gone are skipped."""
        admin = request.app[ADMIN]
        deleted = await admin.store.delete_rows(self.kind, [str(row[self.pk]) for row in rows])
        for row in deleted:
            ident = str(row[self.pk])
            await admin.principals.forget(self.noun, ident)
            await self._audit(request, "deleted", ident, self.view(row), {})
        return deleted

    @property
    def pk(self) -> str:
        return TABLES[self.kind][1]

    async def _audit(self, request: web.Request, action: Action, ident: str,
                     before: dict[str, Any] | None, updated: dict[str, Any]) -> None:
        await record_change(request, self.kind, action, ident, before, updated)

    def _not_found(self, shown: list[str]) -> ClientError:
        return ClientError(404, f"{self.noun.capitalize()} not found: {', '.join(shown)}",
                           kind="not_found_error")


def audit_actor(request: web.Request) -> str:
    """Who an audit row says made a change: the ``litellm-changed-by`` header, as LiteLLM
    reads it, else the calling key's (or session's) user, else the master key."""
    return (request.headers.get(CHANGED_BY_HEADER) or request[PRINCIPAL].user_id
            or "master_key")


async def record_change(request: web.Request, kind: str, action: Action, ident: str,
                        before: dict[str, Any] | None, updated: dict[str, Any]) -> None:
    """The audit row of a change the caller made: who (``audit_actor``) and with which key
    (its hash; none for the master key)."""
    await request.app[ADMIN].audit.record(
        kind, action, ident, before, updated, changed_by=audit_actor(request),
        changed_by_api_key=request[PRINCIPAL].key_hash)
