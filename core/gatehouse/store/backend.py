"""What a back end supplies -- connections and transactions, opened, checked and closed, a
migration lock -- and the store a config asks for. The queries over them are in ``database``.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING, Any, AsyncContextManager, Iterable, Protocol

from .migrate import apply_pending
from .schema import Row

if TYPE_CHECKING:
    from .database import Store

log = logging.getLogger("gatehouse.store")


class StoreUnavailable(Exception):
    """The database cannot be reached (or refused the statement for that reason)."""


class Tx(Protocol):
    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Run a query; return its rows as dicts."""


class Backend(abc.ABC):
    """A database's connections: SQLite or Postgres."""

    #: Shown in logs and errors; never holds a password.
    description = ""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise StoreUnavailable where open() would fail, changing nothing: no file created,
        no migration applied. For ``gatehouse check-config``, which must write nothing."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> AsyncContextManager[Tx]:
        """A transaction; raises StoreUnavailable when the database cannot be reached."""

    async def ping(self) -> None:
        """Raise when the database does not answer a query."""
        async with self.transaction() as tx:
            await tx.fetchall("SELECT 1")

    @abc.abstractmethod
    async def migration_lock(self, tx: Tx) -> None:
        """Keep other gateways from migrating at the same time, until ``tx`` ends."""

    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; return their names."""
        async with self.transaction() as tx:
            await self.migration_lock(tx)
            applied = await apply_pending(tx)
        if applied:
            log.info("%s: applied migrations %s", self.description, ", ".join(applied))
        return applied

    async def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """One query in a transaction of its own."""
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)


def open_store(database_url: str | None, database_path: str) -> Store:
    """The store a config asks for (not yet opened)."""
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore
        return PostgresStore(database_url)
    if database_url and not database_url.startswith("sqlite:///"):
        raise ValueError("database_url must start with postgresql:// or sqlite:///")
    from .sqlite import SqliteStore
    path = database_url[len("sqlite:///"):] if database_url else database_path
    return SqliteStore(path)
