"""The sums the spend reports and activity views read, aggregated by the database, never row
by row here. What the back ends write differently (a JSON list or field in a text column) each
supplies as ``each_tag``, ``each_run``, ``run_field`` and ``key_owner``."""

from __future__ import annotations

import abc

from .backend import Backend
from .schema import Row
from .sql import DAY, conditions, total

# What the daily activity views group by, beside day, key and model: the spend row's column
# (tags: each tag of the row, from SpendReports.each_tag).
ACTIVITY_ENTITIES = {"team": "l.team_id", "customer": "l.end_user", "tag": "tag.value"}


class SpendReports(Backend):
    """The report queries of a Store; a back end fills in the SQL it says its own way."""

    #: A FROM-clause item giving each tag of spend row ``l`` as ``tag.value``: the one thing
    #: the back ends say differently (tags are a JSON list in a text column).
    each_tag = ""

    async def spend_by_day(self, column: str, start: float, end: float) -> list[Row]:
        """Spend and tokens per UTC day (``day``: days since the epoch), ``column``
        (``team_id`` or ``end_user``, as ``grp``), model and key, for rows started in
        ``[start, end)``."""
        return await self._query(
            f"SELECT {DAY} AS day, {column} AS grp, model, key_hash, SUM(spend) AS spend, "
            f"{total('total_tokens')} FROM gatehouse_spend_logs "
            f"WHERE start_time >= ? AND start_time < ? GROUP BY 1, 2, 3, 4", (start, end))

    async def spend_by_key_model(self, start: float, end: float, where: Row) -> list[Row]:
        """Spend and tokens per key and model for rows started in ``[start, end)`` that match
        ``where`` (column filters, as list_rows takes them)."""
        clauses, params = conditions(where)
        extra = "".join(f" AND {clause}" for clause in clauses)
        return await self._query(
            f"SELECT key_hash, model, SUM(spend) AS spend, {total('prompt_tokens')}, "
            f"{total('completion_tokens')} FROM gatehouse_spend_logs "
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
            f"SELECT {DAY} AS day, team_id, SUM(spend) AS spend FROM gatehouse_spend_logs "
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
        columns = [f"{DAY} AS day", "l.key_hash", "l.model"]
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
            f"SELECT {', '.join(columns)}, SUM(spend) AS spend, {total('prompt_tokens')}, "
            f"{total('completion_tokens')}, COUNT(*) AS api_requests, "
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
