"""SQL text both back ends and the spend-log filters share: WHERE clauses from column
filters, LIKE patterns, a spend row's UTC day and token totals."""

from __future__ import annotations

from typing import Any

from .schema import Row, encode

# The UTC day a spend row started on, in days since the epoch. FLOOR is missing from some
# SQLite builds, and CAST truncates on SQLite but rounds on Postgres: taking one off where the
# cast went past the value gives the floor on both.
DAY = ("(CAST(start_time / 86400 AS INTEGER) - CASE WHEN CAST(start_time / 86400 AS INTEGER) "
       "> start_time / 86400 THEN 1 ELSE 0 END)")


def total(column: str) -> str:
    # Postgres sums BIGINTs as NUMERIC, which arrives as a Decimal; tokens are whole numbers.
    return f"CAST(SUM({column}) AS BIGINT) AS {column}"


def like(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '!'."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def where_clause(where: Row | None,
                 any_of: list[Row] | None = None) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE ...`` for column filters (None values are no filter, lists match any item),
    and-ed with "one of ``any_of`` holds" when that is given."""
    clauses, params = conditions(where)
    if any_of is not None:
        branches = []
        for branch in any_of:
            inner, inner_params = conditions(branch)
            branches.append(f"({' AND '.join(inner) or '1 = 1'})")
            params += inner_params
        clauses.append(f"({' OR '.join(branches) or '1 = 0'})")
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), tuple(params)


def conditions(where: Row | None) -> tuple[list[str], list[Any]]:
    """Each column filter as a clause and its parameters (None values are no filter, lists
    match any item, an empty list matches nothing)."""
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
