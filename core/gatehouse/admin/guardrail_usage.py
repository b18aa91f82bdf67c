"""``GET /guardrails/usage``: what each guardrail did over a period -- runs by verdict, shadow
disagreements, verdict-cache hits and misses, time spent -- for proxy admins and their viewers.

LiteLLM has no such route. The counts come from the ``guardrail_information`` the spend rows
keep (guardrails/monitoring.py), summed by the database (``Store.guardrail_usage``): what
comes back is one row per guardrail and verdict, only arranged here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

from aiohttp import web
from pydantic import BaseModel

from ..access.roles import Rule
from ..errors import ClientError
from ..guardrails.monitoring import NOT_RUN, RunStatus
from ..store.schema import Row
from .bodies import Query, Reply, parse_query, reply
from .context import Admin, gated

STATUSES: tuple[str, ...] = get_args(RunStatus)


class UsageQuery(Query):
    # A date (YYYY-MM-DD, UTC; an end date counts whole) or an ISO date-time (UTC unless it
    # names its zone) for a period shorter than a day.
    start_date: str | None = None
    end_date: str | None = None


class GuardrailUsage(BaseModel):
    guardrail_name: str
    # Runs that reached a verdict (every status but not_run), then each status.
    runs: int
    success: int
    guardrail_intervened: int
    would_have_intervened: int
    guardrail_failed_to_respond: int
    not_run: int
    # Shadow runs (shadow_of) whose verdict differed from their target's.
    shadow_disagreements: int
    cache_hits: int
    cache_misses: int
    # hits / (hits + misses); null when no text was looked up.
    cache_hit_rate: float | None
    avg_duration_ms: float | None


class UsageReply(Reply):
    start_date: str
    end_date: str
    guardrails: list[GuardrailUsage]


def setup(app: web.Application) -> None:
    app.router.add_get("/guardrails/usage", usage)


@gated(Rule.ADMIN_READ)
async def usage(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, UsageQuery)
    start = _instant(query.start_date, "start_date", end=False)
    end = _instant(query.end_date, "end_date", end=True)
    if end <= start:
        raise ClientError(400, "end_date is before start_date", kind="bad_request",
                          param="end_date")
    rows = await admin.store.guardrail_usage(start.timestamp(), end.timestamp())
    return reply(UsageReply, {"start_date": start.isoformat(), "end_date": end.isoformat(),
                              "guardrails": per_guardrail(rows)})


def _instant(raw: str | None, name: str, *, end: bool) -> datetime:
    if not raw:
        raise ClientError(400, "Please provide start_date and end_date", kind="bad_request",
                          param=name)
    try:
        if len(raw) == len("YYYY-MM-DD"):
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + (
                timedelta(days=1) if end else timedelta())
        when = datetime.fromisoformat(raw)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or past the calendar's last day
        raise ClientError(400, f"{name} must be a date (YYYY-MM-DD) or an ISO date-time; got "
                               f"{raw!r}", kind="bad_request", param=name) from None


def per_guardrail(rows: list[Row]) -> list[dict[str, Any]]:
    """One entry per guardrail, by name, from the database's rows per guardrail and
    status."""
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault(row["guardrail_name"], {
            "guardrail_name": row["guardrail_name"], "runs": 0,
            **{status: 0 for status in STATUSES},
            "shadow_disagreements": 0, "cache_hits": 0, "cache_misses": 0, "seconds": 0.0})
        status = row["status"]
        if status != NOT_RUN:
            entry["runs"] += row["runs"]
            entry["seconds"] += row["duration"] or 0.0
        if status in STATUSES:  # one a later version writes is counted in runs alone
            entry[status] += row["runs"]
        entry["shadow_disagreements"] += row["disagreements"]
        entry["cache_hits"] += row["cache_hits"]
        entry["cache_misses"] += row["cache_misses"]
    for entry in found.values():
        looked_up = entry["cache_hits"] + entry["cache_misses"]
        entry["cache_hit_rate"] = entry["cache_hits"] / looked_up if looked_up else None
        seconds = entry.pop("seconds")
        entry["avg_duration_ms"] = seconds * 1000 / entry["runs"] if entry["runs"] else None
    return [found[name] for name in sorted(found)]
