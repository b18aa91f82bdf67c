"""Postgres back end: psycopg 3 with an async connection pool, shared by many gateways.

When the database stops answering, the first transaction to notice waits at most the pool's
timeout; after that every transaction fails at once (StoreUnavailable) while a background
probe waits for the database to come back. Calls are never held up by an outage for longer
than that first timeout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Iterable

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .backend import StoreUnavailable, Tx
from .database import Store
from .schema import Row

log = logging.getLogger("gatehouse.store")

# Any constant works, as long as every gateway uses the same one.
MIGRATION_LOCK_ID = 0x6761_7465
PROBE_INTERVAL = 0.5  # seconds between attempts to reach a database found unreachable
# SQLSTATE classes that mean the connection, not the statement, failed.
_CONNECTION_LOST = ("08", "57P")


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    # The shared statements use "?" placeholders; psycopg wants "%s" (and a literal "%" doubled).
    return sql.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, conn: psycopg.AsyncConnection[Row]):
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(_pg(sql), tuple(params))
        return await cursor.fetchall()


class PostgresStore(Store):
    each_tag = "jsonb_array_elements_text(l.tags::jsonb) AS tag(value)"
    key_owner = "(l.metadata::jsonb ->> 'user_api_key_user_id')"

    # A call that ran no guardrail keeps null there, which has no elements to expand.
    each_run = ("jsonb_array_elements(CASE WHEN jsonb_typeof(l.metadata::jsonb -> "
                "'guardrail_information') = 'array' THEN l.metadata::jsonb -> "
                "'guardrail_information' ELSE '[]'::jsonb END) AS run(value)")

    def run_field(self, *path: str) -> str:
        return f"(run.value #>> '{{{','.join(path)}}}')"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = 3.0):
        self.url = url
        info = psycopg.conninfo.conninfo_to_dict(url)
        self.description = (f"postgres {info.get('host', 'localhost')}:{info.get('port', 5432)}"
                            f"/{info.get('dbname', '')}")
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, timeout=timeout,
            # The pool's own reconnection backs off for minutes by default; giving up early
            # lets the next request (or the probe) start a fresh attempt once the database is
            # back.
            reconnect_timeout=timeout,
            kwargs={"row_factory": dict_row, "autocommit": True,
                    "connect_timeout": max(1, int(timeout))},
            # A connection cut while idle is found and replaced here rather than failing the
            # transaction that draws it.
            check=AsyncConnectionPool.check_connection)
        self._probe: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._pool.open(wait=False)
        await self.migrate()

    async def check(self) -> None:
        await self._pool.open(wait=False)
        async with self.transaction() as tx:
            await tx.fetchall("SELECT 1")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        if self._probe is not None:
            raise StoreUnavailable(f"{self.description}: unreachable")
        try:
            async with self._pool.connection() as conn, conn.transaction():
                yield _PgTx(conn)
        except psycopg.OperationalError as exc:  # PoolTimeout is one too
            if isinstance(exc, PoolTimeout) or _connection_lost(exc):
                self._lost(exc)
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    def _lost(self, exc: Exception) -> None:
        if self._probe is not None:
            return
        log.warning("%s unreachable (%s); calls go on with cached keys and spend rows wait "
                    "in memory", self.description, type(exc).__name__)
        self._probe = asyncio.create_task(self._watch(), name="gatehouse-postgres-probe")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                async with self._pool.connection() as conn:
                    await conn.execute("SELECT 1")
            except psycopg.OperationalError:
                continue
            self._probe = None
            log.warning("%s reachable again", self.description)
            return

    async def migration_lock(self, tx: Tx) -> None:
        await tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    # No SQLSTATE: the client lost the server (connection refused, closed, reset). Others in
    # OperationalError, such as a deadlock, are the statement's problem, not the database's.
    return exc.sqlstate is None or exc.sqlstate.startswith(_CONNECTION_LOST)
