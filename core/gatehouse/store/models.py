"""Stored models (``/model/new``): their rows, and the version every change bumps in the same
transaction, which gateways poll to know when to reload."""

from __future__ import annotations

import time
from typing import Any

import orjson

from .database import Row, Store, Tx

COLUMNS = ("model_id", "model_name", "litellm_params", "model_info", "created_at",
           "created_by", "updated_at", "updated_by")


def _decoded(row: Row) -> Row:
    return {**row, "litellm_params": orjson.loads(row["litellm_params"]),
            "model_info": orjson.loads(row["model_info"])}


async def _bump(tx: Tx) -> None:
    await tx.execute("UPDATE gatehouse_models_version SET version = version + 1 WHERE id = 1")


class ModelRows:
    def __init__(self, store: Store):
        self.store = store

    async def version(self) -> int:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall("SELECT version FROM gatehouse_models_version WHERE id = 1")
        return int(rows[0]["version"]) if rows else 0

    async def all(self) -> list[Row]:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall("SELECT * FROM gatehouse_models ORDER BY created_at, "
                                     "model_id")
        return [_decoded(row) for row in rows]

    async def get(self, model_id: str) -> Row | None:
        async with self.store.transaction() as tx:
            rows = await tx.fetchall("SELECT * FROM gatehouse_models WHERE model_id = ?",
                                     (model_id,))
        return _decoded(rows[0]) if rows else None

    async def insert(self, model_id: str, model_name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row:
        now = time.time()
        row = {"model_id": model_id, "model_name": model_name,
               "litellm_params": orjson.dumps(params).decode(),
               "model_info": orjson.dumps(info).decode(), "created_at": now, "created_by": by,
               "updated_at": now, "updated_by": by}
        async with self.store.transaction() as tx:
            await tx.execute(f"INSERT INTO gatehouse_models ({', '.join(COLUMNS)}) VALUES "
                             f"({', '.join('?' for _ in COLUMNS)})",
                             tuple(row[c] for c in COLUMNS))
            await _bump(tx)
        return _decoded(row)

    async def update(self, model_id: str, model_name: str, params: dict[str, Any],
                     info: dict[str, Any], by: str | None) -> Row | None:
        async with self.store.transaction() as tx:
            changed = await tx.execute(
                "UPDATE gatehouse_models SET model_name = ?, litellm_params = ?, "
                "model_info = ?, updated_at = ?, updated_by = ? WHERE model_id = ?",
                (model_name, orjson.dumps(params).decode(), orjson.dumps(info).decode(),
                 time.time(), by, model_id))
            if not changed:
                return None
            await _bump(tx)
            rows = await tx.fetchall("SELECT * FROM gatehouse_models WHERE model_id = ?",
                                     (model_id,))
        return _decoded(rows[0])

    async def delete(self, model_id: str) -> bool:
        async with self.store.transaction() as tx:
            deleted = await tx.execute("DELETE FROM gatehouse_models WHERE model_id = ?",
                                       (model_id,))
            if deleted:
                await _bump(tx)
        return bool(deleted)
