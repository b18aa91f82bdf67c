"""The migrations shipped in ``migrations/`` (``<version>_<name>.sql``), each applied once,
in order, and recorded in ``gatehouse_migrations``."""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import Tx


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def apply_pending(tx: Tx) -> list[str]:
    """Apply, in ``tx``, the migrations not applied yet; return their names."""
    await tx.execute(
        "CREATE TABLE IF NOT EXISTS gatehouse_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
    done = {r["version"] for r in await tx.fetchall("SELECT version FROM gatehouse_migrations")}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        for statement in statements(sql):
            await tx.execute(statement)
        await tx.execute("INSERT INTO gatehouse_migrations (version, name, applied_at) "
                         "VALUES (?, ?, ?)", (version, name, time.time()))
        applied.append(name)
    return applied
