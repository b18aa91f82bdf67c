"""Settings kept in the database (``gatehouse_config``): JSON values by name, which override
config.yaml's once written."""

from __future__ import annotations

import time
from typing import Any

import orjson

from .database import Store


class ConfigRows:
    def __init__(self, store: Store):
        self.store = store

    async def get(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The stored values of ``names`` (those never written are absent)."""
        async with self.store.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT name, value FROM gatehouse_config WHERE name IN "
                f"({', '.join('?' for _ in names)})", names)
        return {row["name"]: orjson.loads(row["value"]) for row in rows}

    async def put(self, name: str, value: Any, by: str | None) -> None:
        async with self.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO gatehouse_config (name, value, updated_at, updated_by) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (name, orjson.dumps(value).decode(), time.time(), by))
