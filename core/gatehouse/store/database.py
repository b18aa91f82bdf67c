"""Durable state: virtual keys, teams, users, end users, budgets, organizations and their
memberships, spend logs, audit logs.

One schema and one set of SQL statements serve both back ends -- SQLite (a local file, the
default) and Postgres (shared by many gateways). A back end only supplies transactions; the
queries live here. Statements are written with ``?`` placeholders; the Postgres back end
translates them once.
"""

from __future__ import annotations

import abc
import logging
import time
from collections import defaultdict
from importlib import resources
from typing import TYPE_CHECKING, Any, AsyncContextManager, Callable, Iterable, Protocol

import orjson

if TYPE_CHECKING:
    from .spend_filters import SpendLogFilter

log = logging.getLogger("gatehouse.store")

Row = dict[str, Any]

JSON_COLUMNS = frozenset({"models", "metadata", "permissions", "guardrails", "members", "tags",
                          "before_value", "updated_values", "teams", "team_member_permissions",
                          "model_aliases", "aliases", "config", "model_max_budget",
                          "allowed_cache_controls", "allowed_routes", "object_permission",
                          "proxy_server_request", "response"})
BOOL_COLUMNS = frozenset({"blocked", "auto_rotate"})
TABLES = {"keys": ("gatehouse_keys", "key_hash"), "teams": ("gatehouse_teams", "team_id"),
          "users": ("gatehouse_users", "user_id"),
          "end_users": ("gatehouse_end_users", "user_id"),
          "budgets": ("gatehouse_budgets", "budget_id"),
          "organizations": ("gatehouse_organizations", "organization_id"),
          "team_members": ("gatehouse_team_members", "membership_id"),
          "organization_members": ("gatehouse_organization_members", "membership_id")}
# The rows that take their limits from a budget row (budget_id), and whose spend its reset
# zeroes.
BUDGET_LINKED = ("end_users", "team_members", "organization_members", "organizations")


def membership_id(group_id: str, user_id: str) -> str:
    """The one id of a team's or organization's membership: unambiguous whatever either id
    holds."""
    return orjson.dumps([group_id, user_id]).decode()


class StoreUnavailable(Exception):
    """The database cannot be reached (or refused the statement for that reason)."""


class Tx(Protocol):
    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run a statement; return the number of rows it changed."""

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Run a query; return its rows as dicts."""


def encode(row: Row) -> Row:
    out = {}
    for column, value in row.items():
        if column in JSON_COLUMNS and value is not None:
            value = orjson.dumps(value).decode()
        elif column in BOOL_COLUMNS:
            value = int(bool(value))
        out[column] = value
    return out


def decode(row: Row) -> Row:
    out = dict(row)
    for column in JSON_COLUMNS & out.keys():
        if isinstance(out[column], str):
            out[column] = orjson.loads(out[column])
    for column in BOOL_COLUMNS & out.keys():
        out[column] = bool(out[column])
    return out


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


class Store(abc.ABC):
    """The queries, over a back end's transactions."""

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
        applied = []
        async with self.transaction() as tx:
            await self.migration_lock(tx)
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS gatehouse_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
            done = {r["version"] for r in await tx.fetchall(
                "SELECT version FROM gatehouse_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                for statement in statements(sql):
                    await tx.execute(statement)
                await tx.execute("INSERT INTO gatehouse_migrations (version, name, applied_at) "
                                 "VALUES (?, ?, ?)", (version, name, time.time()))
                applied.append(name)
        if applied:
            log.info("%s: applied migrations %s", self.description, ", ".join(applied))
        return applied

    # --- the admin tables (same shape of queries, different tables) ---------------------------

    async def insert_row(self, kind: str, row: Row) -> None:
        table, _ = TABLES[kind]
        row = encode(row)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        async with self.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                             tuple(row.values()))

    async def get_row(self, kind: str, ident: str) -> Row | None:
        table, pk = TABLES[kind]
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT * FROM {table} WHERE {pk} = ?", (ident,))
        return decode(rows[0]) if rows else None

    async def update_row(self, kind: str, ident: str, changes: Row, *,
                         new_ident: str | None = None) -> tuple[Row, Row] | None:
        """Apply ``changes`` -- with ``new_ident``, the row's new id too (a regenerated key's
        new hash), in the same step; return ``(before, after)``, or None when there is no
        such row."""
        table, pk = TABLES[kind]
        renamed = {} if new_ident is None else {pk: new_ident}
        encoded = encode({**changes, **renamed, "updated_at": time.time()})
        sets = ", ".join(f"{column} = ?" for column in encoded)
        async with self.transaction() as tx:
            before = await tx.fetchall(f"SELECT * FROM {table} WHERE {pk} = ?", (ident,))
            if not before:
                return None
            await tx.execute(f"UPDATE {table} SET {sets} WHERE {pk} = ?",
                             (*encoded.values(), ident))
            after = await tx.fetchall(f"SELECT * FROM {table} WHERE {pk} = ?",
                                      (new_ident or ident,))
        return decode(before[0]), decode(after[0])

    async def delete_rows(self, kind: str, idents: list[str]) -> list[Row]:
        """Delete rows; return those that existed."""
        table, pk = TABLES[kind]
        if not idents:
            return []
        marks = ", ".join("?" for _ in idents)
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT * FROM {table} WHERE {pk} IN ({marks})",
                                     tuple(idents))
            await tx.execute(f"DELETE FROM {table} WHERE {pk} IN ({marks})", tuple(idents))
        return [decode(r) for r in rows]

    async def list_rows(self, kind: str, *, where: Row | None = None, limit: int = 100,
                        offset: int = 0, order_by: str = "created_at",
                        descending: bool = False, any_of: list[Row] | None = None) -> list[Row]:
        """A page of rows matching ``where`` (a list value matches any of its items) and, when
        given, at least one of ``any_of``, ordered by ``order_by`` -- a column name the caller
        has checked -- then by id."""
        table, pk = TABLES[kind]
        clause, params = _where(where, any_of)
        direction = " DESC" if descending else ""
        sql = (f"SELECT * FROM {table}{clause} ORDER BY {order_by}{direction}, {pk}{direction} "
               f"LIMIT ? OFFSET ?")
        async with self.transaction() as tx:
            rows = await tx.fetchall(sql, (*params, limit, offset))
        return [decode(r) for r in rows]

    async def count_rows(self, kind: str, *, where: Row | None = None,
                         any_of: list[Row] | None = None) -> int:
        table, _ = TABLES[kind]
        clause, params = _where(where, any_of)
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT COUNT(*) AS n FROM {table}{clause}", params)
        return int(rows[0]["n"])

    async def reset_budgets(self, kind: str, now: float,
                            next_reset: Callable[[str, float], float]) -> list[str]:
        """Set spend to 0 on every row whose ``budget_reset_at`` has passed and move that to
        ``next_reset(budget_duration, now)``; return the ids reset. Several gateways may run
        this at once: a row is reset by whichever gets to it first, once."""
        table, pk = TABLES[kind]
        async with self.transaction() as tx:
            return await _reset_due(tx, table, pk, now, next_reset, "spend = 0, ")

    async def reset_budget_rows(self, now: float, next_reset: Callable[[str, float], float]
                                ) -> tuple[list[str], list[tuple[str, str]]]:
        """As :meth:`reset_budgets` for budget rows, which hold no spend themselves: the spend
        zeroed is that of the rows linked to them (``BUDGET_LINKED``). Return the budget ids
        reset and the ``(kind, id)`` of every row zeroed."""
        async with self.transaction() as tx:
            reset = await _reset_due(tx, "gatehouse_budgets", "budget_id", now, next_reset, "")
            zeroed: list[tuple[str, str]] = []
            if reset:
                marks = ", ".join("?" for _ in reset)
                for kind in BUDGET_LINKED:
                    table, pk = TABLES[kind]
                    rows = await tx.fetchall(
                        f"SELECT {pk} AS ident FROM {table} WHERE budget_id IN ({marks})",
                        tuple(reset))
                    await tx.execute(f"UPDATE {table} SET spend = 0 WHERE budget_id IN ({marks})",
                                     tuple(reset))
                    zeroed += [(kind, row["ident"]) for row in rows]
        return reset, zeroed

    # --- key rotation --------------------------------------------------------------------------

    async def keys_to_rotate(self, now: float) -> list[Row]:
        """Keys flagged for rotation whose ``key_rotation_at`` has passed or is not set yet
        (flagged before rotations were scheduled)."""
        async with self.transaction() as tx:
            return await tx.fetchall(
                "SELECT key_hash, key_alias, rotation_interval, key_rotation_at "
                "FROM gatehouse_keys WHERE auto_rotate = 1 AND rotation_interval IS NOT NULL "
                "AND (key_rotation_at IS NULL OR key_rotation_at <= ?) ORDER BY key_hash",
                (now,))

    async def schedule_rotation(self, key_hash: str, at: float) -> None:
        """Give a flagged key with no rotation time yet its first one."""
        async with self.transaction() as tx:
            await tx.execute("UPDATE gatehouse_keys SET key_rotation_at = ? "
                             "WHERE key_hash = ? AND key_rotation_at IS NULL", (at, key_hash))

    async def rotate_key(self, key_hash: str, new_hash: str, key_name: str, now: float,
                         next_at: float) -> bool:
        """Give a due key its new hash and next rotation time; False if it was not due any
        more. The update renames the row, so of several gateways rotating at once exactly one
        finds the old hash."""
        async with self.transaction() as tx:
            return bool(await tx.execute(
                "UPDATE gatehouse_keys SET key_hash = ?, key_name = ?, last_rotation_at = ?, "
                "key_rotation_at = ?, rotation_count = rotation_count + 1, updated_at = ? "
                "WHERE key_hash = ? AND auto_rotate = 1 AND key_rotation_at <= ?",
                (new_hash, key_name, now, next_at, now, key_hash, now)))

    # --- end users -----------------------------------------------------------------------------

    async def set_end_users_blocked(self, user_ids: list[str], blocked: bool) -> list[Row]:
        """Block or unblock end users, creating those not seen yet; return their rows."""
        now = time.time()
        marks = ", ".join("?" for _ in user_ids)
        async with self.transaction() as tx:
            for user_id in user_ids:
                await tx.execute(
                    "INSERT INTO gatehouse_end_users (user_id, blocked, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                    "blocked = excluded.blocked, updated_at = excluded.updated_at",
                    (user_id, int(blocked), now, now))
            rows = await tx.fetchall(
                f"SELECT * FROM gatehouse_end_users WHERE user_id IN ({marks})", tuple(user_ids))
        return [decode(r) for r in rows]

    # --- spend ---------------------------------------------------------------------------------

    async def write_spend(self, rows: list[Row]) -> int:
        """Insert spend-log rows and add their spend to their key and team, in one transaction.

        Idempotent: a row whose id is already stored is skipped and adds nothing, so a batch
        can be retried after a failure without counting anything twice.
        """
        totals: dict[tuple[str, str], float] = defaultdict(float)
        written = 0
        async with self.transaction() as tx:
            for row in rows:
                encoded = encode(row)
                columns = ", ".join(encoded)
                marks = ", ".join("?" for _ in encoded)
                inserted = await tx.execute(
                    f"INSERT INTO gatehouse_spend_logs ({columns}) VALUES ({marks}) "
                    f"ON CONFLICT (id) DO NOTHING", tuple(encoded.values()))
                if not inserted:
                    continue
                written += 1
                if row["spend"]:
                    for kind, ident in _spenders(row):
                        totals[kind, ident] += row["spend"]
            # One update per row charged, in a fixed order: two gateways flushing at once
            # then lock rows in the same order and cannot deadlock.
            for (kind, ident), spend in sorted(totals.items()):
                await tx.execute(*_charge(kind, ident, spend))
        return written

    async def spend_logs(self, *, request_id: str | None = None, key_hash: str | None = None,
                         limit: int = 100) -> list[Row]:
        """Rows newest first; ``request_id`` is the gateway's id or the upstream reply's."""
        # Imported here: the filter module builds on this one's SQL helpers.
        from .spend_filters import SpendLogFilter
        return await self.spend_log_page(
            SpendLogFilter(columns={"key_hash": key_hash}, request_id=request_id), limit=limit)

    async def spend_log_page(self, chosen: SpendLogFilter, *, limit: int,
                             offset: int = 0) -> list[Row]:
        """A page of the rows ``chosen`` picks, newest first."""
        clause, params = chosen.where()
        rows = await self._query(
            f"SELECT * FROM gatehouse_spend_logs{clause} ORDER BY start_time DESC, id DESC "
            f"LIMIT ? OFFSET ?", (*params, limit, offset))
        return [decode(r) for r in rows]

    async def stored_calls(self, *, since: float, key_hash: str | None = None,
                           team_id: str | None = None, limit: int | None = None
                           ) -> tuple[list[Row], int]:
        """The spend rows since ``since`` that hold their call's request text, newest first,
        and how many rows the same filters find in all (with text or without)."""
        clauses, params = ["start_time >= ?"], [since]
        for column, value in (("key_hash", key_hash), ("team_id", team_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " AND ".join(clauses)
        sql = (f"SELECT * FROM gatehouse_spend_logs WHERE {where} "
               f"AND proxy_server_request IS NOT NULL ORDER BY start_time DESC")
        async with self.transaction() as tx:
            rows = await tx.fetchall(sql + (" LIMIT ?" if limit is not None else ""),
                                     (*params, limit) if limit is not None else params)
            total = await tx.fetchall(
                f"SELECT COUNT(*) AS n FROM gatehouse_spend_logs WHERE {where}", params)
        return [decode(r) for r in rows], total[0]["n"]

    async def count_spend_logs(self, chosen: SpendLogFilter) -> int:
        clause, params = chosen.where()
        rows = await self._query(f"SELECT COUNT(*) AS n FROM gatehouse_spend_logs{clause}",
                                 params)
        return int(rows[0]["n"])

    # --- spend reports: aggregated by the database, never row by row here ------------------

    #: A FROM-clause item giving each tag of spend row ``l`` as ``tag.value``: the one thing
    #: the back ends say differently (tags are a JSON list in a text column).
    each_tag = ""

    async def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        async with self.transaction() as tx:
            return await tx.fetchall(sql, params)

    async def spend_by_day(self, column: str, start: float, end: float) -> list[Row]:
        """Spend and tokens per UTC day (``day``: days since the epoch), ``column``
        (``team_id`` or ``end_user``, as ``grp``), model and key, for rows started in
        ``[start, end)``."""
        return await self._query(
            f"SELECT {_DAY} AS day, {column} AS grp, model, key_hash, SUM(spend) AS spend, "
            f"{_total('total_tokens')} FROM gatehouse_spend_logs "
            f"WHERE start_time >= ? AND start_time < ? GROUP BY 1, 2, 3, 4", (start, end))

    async def spend_by_key_model(self, start: float, end: float, where: Row) -> list[Row]:
        """Spend and tokens per key and model for rows started in ``[start, end)`` that match
        ``where`` (column filters, as list_rows takes them)."""
        clauses, params = _conditions(where)
        extra = "".join(f" AND {clause}" for clause in clauses)
        return await self._query(
            f"SELECT key_hash, model, SUM(spend) AS spend, {_total('prompt_tokens')}, "
            f"{_total('completion_tokens')} FROM gatehouse_spend_logs "
            f"WHERE start_time >= ? AND start_time < ?{extra} GROUP BY key_hash, model",
            (start, end, *params))

    async def top_keys(self, since: float, limit: int) -> list[Row]:
        """The ``limit`` keys that spent most since ``since``, with their alias, name and
        team (null for a key deleted since)."""
        return await self._query(
            "SELECT s.key_hash, s.spend, k.key_alias, k.key_name, k.team_id FROM ("
            "SELECT key_hash, SUM(spend) AS spend FROM gatehouse_spend_logs "
            "WHERE start_time >= ? AND key_hash IS NOT NULL GROUP BY key_hash "
            "ORDER BY spend DESC, key_hash LIMIT ?) s "
            "LEFT JOIN gatehouse_keys k ON k.key_hash = s.key_hash "
            "ORDER BY s.spend DESC, s.key_hash", (since, limit))

    async def team_spend_by_day(self, since: float) -> list[Row]:
        """Spend per UTC day and team since ``since``, with the team's alias."""
        return await self._query(
            f"SELECT s.day, s.team_id, t.team_alias, s.spend FROM ("
            f"SELECT {_DAY} AS day, team_id, SUM(spend) AS spend FROM gatehouse_spend_logs "
            f"WHERE start_time >= ? GROUP BY 1, 2) s "
            f"LEFT JOIN gatehouse_teams t ON t.team_id = s.team_id", (since,))

    async def spend_by_tag(self, start: float | None = None, end: float | None = None,
                           tags: list[str] | None = None) -> list[Row]:
        """Calls and spend per request tag (``tag``, ``log_count``, ``spend``), most spent
        first; optionally for rows started in ``[start, end)`` and for some tags only."""
        clauses, params = ["l.tags <> '[]'"], []
        if start is not None and end is not None:
            clauses.append("l.start_time >= ? AND l.start_time < ?")
            params += [start, end]
        if tags:
            clauses.append(f"tag.value IN ({', '.join('?' for _ in tags)})")
            params += tags
        return await self._query(
            f"SELECT tag.value AS tag, COUNT(*) AS log_count, SUM(l.spend) AS spend "
            f"FROM gatehouse_spend_logs l, {self.each_tag} WHERE {' AND '.join(clauses)} "
            f"GROUP BY tag.value ORDER BY spend DESC, tag.value", params)

    #: The user whose key made spend row ``l``: kept in its metadata, since ``user_id`` holds
    #: the request's ``user`` when one was sent.
    key_owner = ""

    async def activity_by_day(self, start: float, end: float, *, entity: str | None = None,
                              entity_ids: list[str] | None = None, model: str | None = None,
                              key_hash: str | None = None, owner: str | None = None
                              ) -> list[Row]:
        """Spend, tokens and calls (all, and those that succeeded) per UTC day (``day``),
        key and model for rows started in ``[start, end)``; with ``entity`` (a key of
        ACTIVITY_ENTITIES) per that too (``entity``), leaving out rows without one. Filters:
        the entity's ids, the model, the key, and ``owner``, the user whose key made the call."""
        columns = [f"{_DAY} AS day", "l.key_hash", "l.model"]
        tables = ["gatehouse_spend_logs l"]
        clauses, params = ["l.start_time >= ?", "l.start_time < ?"], [start, end]
        if entity is not None:
            column = ACTIVITY_ENTITIES[entity]
            columns.append(f"{column} AS entity")
            if entity == "tag":
                tables.append(self.each_tag)
            clauses.append(f"{column} IS NOT NULL")
            if entity_ids:
                clauses.append(f"{column} IN ({', '.join('?' for _ in entity_ids)})")
                params += entity_ids
        for column, value in (("l.model", model), ("l.key_hash", key_hash),
                              (self.key_owner, owner)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return await self._query(
            f"SELECT {', '.join(columns)}, SUM(spend) AS spend, {_total('prompt_tokens')}, "
            f"{_total('completion_tokens')}, COUNT(*) AS api_requests, "
            f"SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END) AS successful_requests "
            f"FROM {', '.join(tables)} WHERE {' AND '.join(clauses)} "
            f"GROUP BY {', '.join(str(n + 1) for n in range(len(columns)))}", params)

    #: A FROM-clause item giving each entry of spend row ``l``'s
    #: ``metadata.guardrail_information`` as ``run.value`` (none where the call ran no
    #: guardrail), and the SQL text of one field of that entry.
    each_run = ""

    @abc.abstractmethod
    def run_field(self, *path: str) -> str: ...

    async def guardrail_usage(self, start: float, end: float) -> list[Row]:
        """Guardrail runs of the calls started in ``[start, end)``, per guardrail and status
        (``guardrail_name``, ``status``, ``runs``), with their shadow disagreements, verdict
        cache hits and misses, and seconds spent (``duration``)."""
        name, status = self.run_field("guardrail_name"), self.run_field("guardrail_status")
        # A JSON true is 1 to SQLite and 'true' to Postgres.
        differ = f"CAST({self.run_field('verdicts_differ')} AS TEXT) IN ('1', 'true')"

        def total(path: tuple[str, ...], kind: str, label: str) -> str:
            return (f"CAST(SUM(COALESCE(CAST({self.run_field(*path)} AS {kind}), 0)) "
                    f"AS {kind}) AS {label}")

        return await self._query(
            f"SELECT {name} AS guardrail_name, {status} AS status, COUNT(*) AS runs, "
            f"SUM(CASE WHEN {differ} THEN 1 ELSE 0 END) AS disagreements, "
            f"{total(('cache', 'hits'), 'BIGINT', 'cache_hits')}, "
            f"{total(('cache', 'misses'), 'BIGINT', 'cache_misses')}, "
            f"{total(('duration',), 'DOUBLE PRECISION', 'duration')} "
            f"FROM gatehouse_spend_logs l, {self.each_run} "
            f"WHERE l.start_time >= ? AND l.start_time < ? AND {name} IS NOT NULL "
            f"GROUP BY 1, 2 ORDER BY 1, 2", (start, end))

    async def reset_spend(self, kind: str) -> list[Row]:
        """Zero the spend of every row of ``kind`` that has any; return those rows as they
        were (id as ``ident``, and ``budget_reset_at``, which names their spend counters)."""
        table, pk = TABLES[kind]
        async with self.transaction() as tx:
            rows = await tx.fetchall(f"SELECT {pk} AS ident, budget_reset_at FROM {table} "
                                     f"WHERE spend <> 0")
            await tx.execute(f"UPDATE {table} SET spend = 0 WHERE spend <> 0")
        return rows

    # --- retention ------------------------------------------------------------------------------

    async def delete_older(self, table: str, column: str, cutoff: Any, limit: int) -> int:
        """Delete at most ``limit`` rows of ``table`` whose ``column`` is before ``cutoff``,
        oldest first, in one short transaction; return how many went."""
        async with self.transaction() as tx:
            return await tx.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < ? "
                f"ORDER BY {column} LIMIT ?)", (cutoff, limit))

    async def take_lease(self, name: str, holder: str, now: float, until: float) -> bool:
        """Hold the lease ``name`` until ``until`` if it is free (never taken, lapsed, or
        already ``holder``'s); False if another holder has it. Of several gateways asking at
        once, one gets it: the row's unique name decides."""
        async with self.transaction() as tx:
            return bool(await tx.execute(
                "INSERT INTO gatehouse_leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at WHERE gatehouse_leases.expires_at <= ? "
                "OR gatehouse_leases.holder = excluded.holder", (name, holder, until, now)))

    # --- audit ---------------------------------------------------------------------------------

    async def write_audit(self, row: Row) -> None:
        encoded = encode(row)
        columns = ", ".join(encoded)
        marks = ", ".join("?" for _ in encoded)
        async with self.transaction() as tx:
            await tx.execute(f"INSERT INTO gatehouse_audit_logs ({columns}) VALUES ({marks})",
                             tuple(encoded.values()))

    async def audit_logs(self, *, object_id: str | None = None, limit: int = 100) -> list[Row]:
        return (await self.audit_page({"object_id": object_id}, limit=limit))[0]

    async def audit_page(self, where: Row, *, since: str | None = None,
                         before: str | None = None, inside: dict[str, str] | None = None,
                         order_by: str = "updated_at", descending: bool = True,
                         limit: int = 100, offset: int = 0) -> tuple[list[Row], int]:
        """A page of audit rows and how many match in all: ``where`` column filters,
        ``updated_at`` in ``[since, before)`` (ISO 8601 text, which sorts as time does),
        ``inside`` fields the row's before or updated values hold (name -> value); ordered
        by ``order_by`` -- a column the caller has checked -- then by id."""
        clauses, params = _conditions(where)
        if since is not None:
            clauses.append("updated_at >= ?")
            params.append(since)
        if before is not None:
            clauses.append("updated_at < ?")
            params.append(before)
        for name, value in (inside or {}).items():
            # The JSON is written by orjson (no spaces), so a field is found by its text.
            clauses.append("(before_value LIKE ? ESCAPE '!' OR updated_values LIKE ? "
                           "ESCAPE '!')")
            pattern = f"%{_like(orjson.dumps({name: value}).decode()[1:-1])}%"
            params += [pattern, pattern]
        clause = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        direction = " DESC" if descending else ""
        async with self.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT * FROM gatehouse_audit_logs{clause} "
                f"ORDER BY {order_by}{direction}, id{direction} LIMIT ? OFFSET ?",
                (*params, limit, offset))
            total = await tx.fetchall(f"SELECT COUNT(*) AS n FROM gatehouse_audit_logs{clause}",
                                      params)
        return [decode(r) for r in rows], int(total[0]["n"])

    async def audit_row(self, audit_id: str) -> Row | None:
        rows, _ = await self.audit_page({"id": audit_id}, limit=1)
        return rows[0] if rows else None


# What the daily activity views group by, beside day, key and model: the spend row's column
# (tags: each tag of the row, from Store.each_tag).
ACTIVITY_ENTITIES = {"team": "l.team_id", "customer": "l.end_user", "tag": "tag.value"}

# The UTC day a spend row started on, in days since the epoch. FLOOR is missing from some
# SQLite builds, and CAST truncates on SQLite but rounds on Postgres: taking one off where the
# cast went past the value gives the floor on both.
_DAY = ("(CAST(start_time / 86400 AS INTEGER) - CASE WHEN CAST(start_time / 86400 AS INTEGER) "
        "> start_time / 86400 THEN 1 ELSE 0 END)")


def _total(column: str) -> str:
    # Postgres sums BIGINTs as NUMERIC, which arrives as a Decimal; tokens are whole numbers.
    return f"CAST(SUM({column}) AS BIGINT) AS {column}"


def _like(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '!'."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _spenders(row: Row) -> Iterable[tuple[str, str]]:
    """Every row a spend-log row's cost is added to: its key, team, the key's user, the user's
    membership of the team, the team's organization and the end user."""
    team, user = row.get("team_id"), (row.get("metadata") or {}).get("user_api_key_user_id")
    for kind, ident in (("keys", row.get("key_hash")), ("teams", team), ("users", user),
                        ("organizations", team), ("end_users", row.get("end_user"))):
        if ident:
            yield kind, ident
    if team and user:
        yield "team_members", membership_id(team, user)


def _charge(kind: str, ident: str, spend: float) -> tuple[str, tuple[Any, ...]]:
    table, pk = TABLES[kind]
    if kind == "organizations":  # charged through the team, whose organization may change
        return ("UPDATE gatehouse_organizations SET spend = spend + ? WHERE organization_id = "
                "(SELECT organization_id FROM gatehouse_teams WHERE team_id = ?)",
                (spend, ident))
    if kind == "end_users":
        # Spend is how an end user first appears: the row is made on their first call.
        now = time.time()
        return ("INSERT INTO gatehouse_end_users (user_id, spend, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "spend = gatehouse_end_users.spend + excluded.spend", (ident, spend, now, now))
    return f"UPDATE {table} SET spend = spend + ? WHERE {pk} = ?", (spend, ident)


async def _reset_due(tx: Tx, table: str, pk: str, now: float,
                     next_reset: Callable[[str, float], float], sets: str) -> list[str]:
    """Move every row of ``table`` whose ``budget_reset_at`` has passed to its next reset (and
    apply ``sets`` to it); return the ids moved. The update is guarded by the time it was due,
    so of several gateways running this at once, one resets each row."""
    due = await tx.fetchall(
        f"SELECT {pk} AS ident, budget_duration FROM {table} "
        f"WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= ? ORDER BY {pk}", (now,))
    reset = []
    for row in due:
        duration = row["budget_duration"]
        try:
            at = next_reset(duration, now) if duration else None
        except ValueError:
            at = None  # a duration written by hand that cannot be read: reset once
        if await tx.execute(f"UPDATE {table} SET {sets}budget_reset_at = ? "
                            f"WHERE {pk} = ? AND budget_reset_at <= ?", (at, row["ident"], now)):
            reset.append(row["ident"])
    return reset


def _where(where: Row | None, any_of: list[Row] | None = None) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE ...`` for column filters (None values are no filter, lists match any item),
    and-ed with "one of ``any_of`` holds" when that is given."""
    clauses, params = _conditions(where)
    if any_of is not None:
        branches = []
        for branch in any_of:
            inner, inner_params = _conditions(branch)
            branches.append(f"({' AND '.join(inner) or '1 = 1'})")
            params += inner_params
        clauses.append(f"({' OR '.join(branches) or '1 = 0'})")
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), tuple(params)


def _conditions(where: Row | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (where or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
            if not values:
                clauses.append("1 = 0")
                continue
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params += values
        else:
            clauses.append(f"{column} = ?")
            params.append(encode({column: value})[column])
    return clauses, params


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
