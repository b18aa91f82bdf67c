"""What admins add through the API for every gateway to serve -- models (``/model/new``),
guardrails (``POST /guardrails``) and pass-through endpoints: their rows, and the version
every change bumps in the same transaction, which gateways poll to know when to reload
(``Reloader``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ClassVar

import orjson

from .backend import StoreUnavailable, Tx
from .database import Store
from .schema import Row
from .sealed import Sealer


class StoredRows:
    """One table of served things: an id, a name, sealed ``litellm_params`` and free-form
    info, with a one-row ``<table>_version`` table beside it."""

    table: ClassVar[str]
    id_column: ClassVar[str]
    name_column: ClassVar[str]
    info_column: ClassVar[str]

    def __init__(self, store: Store):
        self.store = store

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return (cls.id_column, cls.name_column, "litellm_params", cls.info_column,
                "created_at", "created_by", "updated_at", "updated_by")

    def _decoded(self, row: Row) -> Row:
        return {**row, "litellm_params": orjson.loads(row["litellm_params"]),
                self.info_column: orjson.loads(row[self.info_column])}

    async def _bump(self, tx: Tx) -> None:
        await tx.execute(f"UPDATE {self.table}_version SET version = version + 1 WHERE id = 1")

    async def version(self) -> int:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(f"SELECT version FROM {self.table}_version WHERE id = 1")
        return int(rows[0]["version"]) if rows else 0

    async def all(self) -> list[Row]:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(f"SELECT * FROM {self.table} ORDER BY created_at, "
                                     f"{self.id_column}")
        return [self._decoded(row) for row in rows]

    async def get(self, ident: str) -> Row | None:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(f"SELECT * FROM {self.table} WHERE {self.id_column} = ?",
                                     (ident,))
        return self._decoded(rows[0]) if rows else None

    async def insert(self, ident: str, name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row:
        now = time.time()
        row = {self.id_column: ident, self.name_column: name,
               "litellm_params": orjson.dumps(params).decode(),
               self.info_column: orjson.dumps(info).decode(), "created_at": now,
               "created_by": by, "updated_at": now, "updated_by": by}
        columns = self.columns()
        async with self.store.transaction() as tx:
            await tx.execute(f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES "
                             f"({', '.join('?' for _ in columns)})",
                             tuple(row[c] for c in columns))
            await self._bump(tx)
        return self._decoded(row)

    async def update(self, ident: str, name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row | None:
        async with self.store.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE {self.table} SET {self.name_column} = ?, litellm_params = ?, "
                f"{self.info_column} = ?, updated_at = ?, updated_by = ? "
                f"WHERE {self.id_column} = ?",
                (name, orjson.dumps(params).decode(), orjson.dumps(info).decode(),
                 time.time(), by, ident))
            if not changed:
                return None
            await self._bump(tx)
            rows = await tx.fetchall(f"SELECT * FROM {self.table} WHERE {self.id_column} = ?",
                                     (ident,))
        return self._decoded(rows[0])

    async def delete(self, ident: str) -> bool:
        async with self.store.transaction() as tx:
            deleted = await tx.execute(f"DELETE FROM {self.table} WHERE {self.id_column} = ?",
                                       (ident,))
            if deleted:
                await self._bump(tx)
        return bool(deleted)


class ModelRows(StoredRows):
    table = "gatehouse_models"
    id_column = "model_id"
    name_column = "model_name"
    info_column = "model_info"


class GuardrailRows(StoredRows):
    table = "gatehouse_guardrails"
    id_column = "guardrail_id"
    name_column = "guardrail_name"
    info_column = "guardrail_info"


class PassThroughRows(StoredRows):
    """Pass-through endpoints: ``litellm_params`` holds the endpoint less its path, sealed
    (its headers carry the target's credentials)."""

    table = "gatehouse_pass_through"
    id_column = "endpoint_id"
    name_column = "path"
    info_column = "endpoint_info"


COLUMNS = ModelRows.columns()

POLL_INTERVAL = 1.0


class Reloader:
    """Serves what a table holds: off the request path, reads its version every ``interval``
    and, when it moved, hands every row to :meth:`apply`, which replaces what is served in
    one swap. A change made through this gateway calls :meth:`reload` at once; other gateways
    follow within the interval."""

    #: What the log calls the rows.
    what: ClassVar[str]

    def __init__(self, rows: StoredRows, sealer: Sealer, interval: float = POLL_INTERVAL):
        self.rows = rows
        self.sealer = sealer
        self.interval = interval
        self.version: int | None = None
        self._poller: asyncio.Task[None] | None = None
        self._reloading = asyncio.Lock()
        self.log = logging.getLogger(f"gatehouse.{rows.table.removeprefix('gatehouse_')}")

    async def start(self) -> None:
        await self.reload()
        self._poller = asyncio.create_task(self._poll(), name=f"gatehouse-{self.what}")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def _poll(self) -> None:
        unreachable = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.reload()
            except StoreUnavailable as exc:
                if not unreachable:
                    self.log.warning("%s: database unreachable; serving those known (%s)",
                                     self.what, exc)
                unreachable = True
                continue
            except Exception:  # noqa: BLE001 - keep polling whatever one round does
                self.log.exception("%s: reload failed", self.what)
                continue
            unreachable = False

    async def reload(self) -> None:
        """Serve the rows as they are now, if they changed since the last reload."""
        async with self._reloading:
            version = await self.rows.version()
            if version == self.version:
                return
            await self.apply(await self.rows.all())
            self.version = version

    async def apply(self, rows: list[Row]) -> None:
        raise NotImplementedError

    # --- changes, each served here at once -----------------------------------------------------

    async def insert(self, ident: str, name: str, params: dict[str, Any], info: dict[str, Any],
                     by: str | None) -> Row:
        row = await self.rows.insert(ident, name, self.sealer.seal(params), info, by)
        await self.reload()
        return row

    async def replace(self, ident: str, name: str, params: dict[str, Any],
                      info: dict[str, Any], by: str | None) -> Row | None:
        row = await self.rows.update(ident, name, self.sealer.seal(params), info, by)
        await self.reload()
        return row

    async def delete(self, ident: str) -> bool:
        deleted = await self.rows.delete(ident)
        await self.reload()
        return deleted

    async def opened(self, ident: str) -> Row | None:
        """A stored row with its params decrypted, to merge an update into."""
        row = await self.rows.get(ident)
        if row is not None:
            row["litellm_params"] = self.sealer.open(row["litellm_params"])
        return row
