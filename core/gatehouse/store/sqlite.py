"""SQLite back end: a local file, nothing to install.

sqlite3 blocks, so every statement runs on one worker thread, off the event loop; a lock keeps
one transaction at a time on the single connection. WAL mode lets several gateway processes on
one machine share the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

from .backend import StoreUnavailable, Tx
from .database import Store
from .schema import Row


class _SqliteTx:
    def __init__(self, store: SqliteStore, conn: sqlite3.Connection):
        self._store = store
        self._conn = conn

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self._store._call(self._conn.execute, sql, tuple(params))
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        def run() -> list[Row]:
            cursor = self._conn.execute(sql, tuple(params))
            return [dict(row) for row in cursor.fetchall()]
        return await self._store._call(run)


def _leave_transaction(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteStore(Store):
    each_tag = "json_each(l.tags) AS tag"
    key_owner = "json_extract(l.metadata, '$.user_api_key_user_id')"

    each_run = "json_each(l.metadata, '$.guardrail_information') AS run"

    def run_field(self, *path: str) -> str:
        return f"json_extract(run.value, '$.{'.'.join(path)}')"

    def __init__(self, path: str):
        self.path = path
        self.description = f"sqlite {path}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatehouse-sqlite")
        self._lock = asyncio.Lock()
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.OperationalError, OSError) as exc:
            # OperationalError: locked, unreadable or full; OSError: its folder cannot be made.
            raise StoreUnavailable(f"{self.description}: {exc}") from exc

    async def open(self) -> None:
        def connect() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        self._conn = await self._call(connect)
        await self.migrate()

    async def check(self) -> None:
        if self.path == ":memory:":
            return
        path = Path(self.path)
        # open() makes the missing folders, and WAL mode writes files beside the database:
        # the nearest folder that exists must take new files.
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise StoreUnavailable(f"{self.description}: {folder} is not a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"{self.description}: cannot create files in {folder}")
        if path.exists() and not (path.is_file() and os.access(path, os.R_OK | os.W_OK)):
            raise StoreUnavailable(f"{self.description}: not a file it can read and write")

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        # The close above ran after everything queued before it on the one worker, so there
        # is nothing left to wait for -- and waiting would block the event loop.
        self._executor.shutdown(wait=False)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        conn = self._conn
        if conn is None:
            raise StoreUnavailable(f"{self.description}: not open")
        async with self._lock:
            try:
                await self._call(conn.execute, "BEGIN IMMEDIATE")
                yield _SqliteTx(self, conn)
                await self._call(conn.execute, "COMMIT")
            except BaseException:
                # Whatever ended the transaction early -- an error, a COMMIT that failed (still
                # locked past the timeout), or a cancel while BEGIN or COMMIT still ran on the
                # worker -- the connection must leave it, or every later BEGIN fails. Queued on
                # the one worker before the lock is released, the ROLLBACK runs after what
                # this transaction queued and before the next one's BEGIN.
                with contextlib.suppress(RuntimeError):  # closed: the transaction went with it
                    self._executor.submit(_leave_transaction, conn)
                raise

    async def migration_lock(self, tx: Tx) -> None:
        # BEGIN IMMEDIATE already holds the file's write lock.
        return None
