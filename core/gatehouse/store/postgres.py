"""Postgres back end: psycopg 3 with an async connection pool, shared by many gateways."""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import Row, Store, StoreUnavailable

# Any constant works, as long as every gateway uses the same one.
MIGRATION_LOCK_ID = 0x6761_7465


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    # The shared statements use "?" placeholders; psycopg wants "%s" (and a literal "%" doubled).
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, conn: psycopg.AsyncConnection):
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return await cursor.fetchall()


class PostgresStore(Store):
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 3.0):
        self.url = url
        info = psycopg.conninfo.conninfo_to_dict(url)
        self.description = (f"postgres {info.get('host', 'localhost')}:{info.get('port', 5432)}"
                            f"/{info.get('dbname', '')}")
        self._timeout = connect_timeout
        self._pool = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=connect_timeout,
            kwargs={"row_factory": dict_row, "autocommit": True,
                    "connect_timeout": max(1, int(connect_timeout))},
            check=AsyncConnectionPool.check_connection)

    async def open(self) -> None:
        await self._pool.open(wait=False)
        await self.migrate()

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        try:
            async with self._pool.connection() as conn:
                async with conn.transaction():
                    yield _PgTx(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}") from exc

    async def migration_lock(self, tx: _PgTx) -> None:
        await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
