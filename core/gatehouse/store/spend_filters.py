"""Which spend-log rows a reader asks for, as the SQL that picks them: the database filters and
counts, so a page of the request log never loads the rows around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .schema import Row
from .sql import conditions, like

# Where a row's key is looked up by something other than its hash: the keys table holds it.
_KEYS_WHERE = "key_hash IN (SELECT key_hash FROM gatehouse_keys WHERE {column} = ?)"


@dataclass(frozen=True, slots=True)
class SpendLogFilter:
    """Every condition is and-ed; None (or an empty ``columns``) is no condition.

    ``columns``: exact matches (``key_hash``, ``team_id``, ``user_id``, ``end_user``,
    ``model``). ``request_id`` matches the gateway's id or the upstream reply's.
    ``key_alias`` / ``key_owner``: rows of the keys with that alias / of that user, as the keys
    table holds them now (a deleted key's rows are no longer anyone's). ``failed``: the call
    ended in an error status (>= 400), or did not. Times are epoch seconds, ``since``
    inclusive, ``until`` exclusive. ``guardrail_status``: at least one guardrail run of the call
    ended with that status (``guardrails.monitoring.RunStatus``).
    """

    columns: Row = field(default_factory=dict)
    request_id: str | None = None
    key_alias: str | None = None
    key_owner: str | None = None
    failed: bool | None = None
    since: float | None = None
    until: float | None = None
    min_spend: float | None = None
    max_spend: float | None = None
    guardrail_status: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        """`` WHERE ...`` (or nothing) and its parameters."""
        clauses, params = conditions(self.columns)
        if self.request_id is not None:
            clauses.append("(request_id = ? OR response_id = ?)")
            params += [self.request_id, self.request_id]
        for column, value in (("key_alias", self.key_alias), ("user_id", self.key_owner)):
            if value is not None:
                clauses.append(_KEYS_WHERE.format(column=column))
                params.append(value)
        if self.failed is not None:
            clauses.append("status >= 400" if self.failed else "status < 400")
        for clause, value in (("start_time >= ?", self.since), ("start_time < ?", self.until),
                              ("spend >= ?", self.min_spend), ("spend <= ?", self.max_spend)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if self.guardrail_status is not None:
            # The runs are in the metadata's guardrail_information, written by orjson (no
            # spaces), so a status is found by its text.
            entry = orjson.dumps({"guardrail_status": self.guardrail_status}).decode()[1:-1]
            clauses.append("metadata LIKE ? ESCAPE '!'")
            params.append(f"%{like(entry)}%")
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
