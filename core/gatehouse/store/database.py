"""Durable state: virtual keys, teams, users, end users, budgets, organizations and their
memberships, spend logs, audit logs.

One schema and one set of SQL statements serve both back ends -- SQLite (a local file, the
default) and Postgres (shared by many gateways). A back end (``backend``) only supplies
transactions; the queries live here, and the spend reports' sums in ``spend_reports``.
Statements are written with ``?`` placeholders; the Postgres back end translates them once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Iterable

import orjson

from .backend import Tx
from .schema import BUDGET_LINKED, TABLES, Row, decode, encode, membership_id
from .spend_filters import SpendLogFilter
from .spend_reports import SpendReports
from .sql import conditions, like, where_clause


class Store(SpendReports):
    """The queries, over a back end's transactions."""

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
        clause, params = where_clause(where, any_of)
        direction = " DESC" if descending else ""
        sql = (f"SELECT * FROM {table}{clause} ORDER BY {order_by}{direction}, {pk}{direction} "
               f"LIMIT ? OFFSET ?")
        async with self.transaction() as tx:
            rows = await tx.fetchall(sql, (*params, limit, offset))
        return [decode(r) for r in rows]

    async def count_rows(self, kind: str, *, where: Row | None = None,
                         any_of: list[Row] | None = None) -> int:
        table, _ = TABLES[kind]
        clause, params = where_clause(where, any_of)
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
        """The newest ``limit`` spend rows since ``since`` that hold their call's request
        text, newest first, and how many rows the same filters find without text."""
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
            # Counted apart from the limit, which picks among the calls with text.
            without = await tx.fetchall(
                f"SELECT COUNT(*) AS n FROM gatehouse_spend_logs WHERE {where} "
                f"AND proxy_server_request IS NULL", params)
        return [decode(r) for r in rows], without[0]["n"]

    async def count_spend_logs(self, chosen: SpendLogFilter) -> int:
        clause, params = chosen.where()
        rows = await self._query(f"SELECT COUNT(*) AS n FROM gatehouse_spend_logs{clause}",
                                 params)
        return int(rows[0]["n"])

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
        clauses, params = conditions(where)
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
            pattern = f"%{like(orjson.dumps({name: value}).decode()[1:-1])}%"
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
