"""The global spend reports -- ``GET /global/spend/report`` (per day by team or customer, or
per key and model), ``/global/spend/keys``, ``/global/spend/teams``, ``/global/spend/tags`` --
for proxy admins, their viewers and keys with ``permissions.get_spend_routes``.

The database sums the spend rows (``Store.spend_by_*``); what comes back is one row per group,
which is only arranged into LiteLLM's shapes here. Days are UTC; a range's ``end_date`` is
included whole.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from ..access.roles import Rule
from ..errors import ClientError, json_response
from ..store.schema import Row
from .bodies import Day, Query, RowsQuery, day_start, parse_query
from .budgets import rows_where_in
from .context import Admin, gated
from .key_views import key_ident

DAY = 86400
RECENT = 30 * DAY  # what /global/spend/keys and /global/spend/teams look back over
TOP_TEAMS = 10
GROUPS = {"team": ("team_id", "teams", "team_name"),
          "customer": ("end_user", "customers", "customer")}


class DateRange(Query):
    start_date: Day | None = Field(default=None, description="The first day (required)")
    end_date: Day | None = Field(default=None, description="The last day, included "
                                                           "(required)")


class ReportQuery(DateRange):
    api_key: str | None = Field(default=None, description="Only this key's spend")
    internal_user_id: str | None = Field(default=None, description="Only this user's spend")
    team_id: str | None = Field(default=None, description="With customer_id: only this "
                                                          "team's spend on that customer")
    customer_id: str | None = None
    group_by: str = Field(default="team", description="team, customer or api_key")


class TagsQuery(DateRange):
    tags: str | None = Field(default=None, description="Comma-separated tags; all when not "
                                                       "given")


def setup(app: web.Application) -> None:
    app.router.add_get("/global/spend/report", report)
    app.router.add_get("/global/spend/keys", top_keys)
    app.router.add_get("/global/spend/teams", teams)
    app.router.add_get("/global/spend/tags", tags)


@gated(Rule.SPEND)
async def report(request: web.Request, admin: Admin) -> web.Response:
    """A filter, in LiteLLM's order -- ``api_key``, ``internal_user_id``, ``team_id`` with
    ``customer_id`` -- answers per key and model; otherwise ``group_by`` decides."""
    query = parse_query(request, ReportQuery)
    start, end = date_range(query)
    where: Row | None = None
    if query.api_key:
        where = {"key_hash": key_ident(query.api_key)[0]}
    elif query.internal_user_id:
        where = {"user_id": query.internal_user_id}
    elif query.team_id and query.customer_id:
        where = {"team_id": query.team_id, "end_user": query.customer_id}
    group_by = query.group_by
    if where is not None or group_by == "api_key":
        return json_response(per_key(await admin.store.spend_by_key_model(start, end,
                                                                          where or {})))
    if group_by not in GROUPS:
        raise ClientError(400, f"group_by must be one of team, customer, api_key; got "
                               f"{group_by!r}", kind="bad_request", param="group_by")
    column, plural, label = GROUPS[group_by]
    rows = await admin.store.spend_by_day(column, start, end)
    if group_by == "team":
        names = await team_names(admin, {row["grp"] for row in rows if row["grp"]})
        for row in rows:
            row["grp"] = names.get(row["grp"], row["grp"]) or "Unassigned Team"
    else:  # spend of no end user is no customer's
        rows = [row for row in rows if row["grp"] is not None]
    return json_response(per_day(rows, plural, label))


@gated(Rule.SPEND)
async def top_keys(request: web.Request, admin: Admin) -> web.Response:
    limit = parse_query(request, RowsQuery).limit
    rows = await admin.store.top_keys(time.time() - RECENT, limit)
    return json_response([{"api_key": row["key_hash"], "total_spend": row["spend"],
                            "key_alias": row["key_alias"], "key_name": row["key_name"],
                            "team_id": row["team_id"]} for row in rows])


@gated(Rule.SPEND)
async def teams(request: web.Request, admin: Admin) -> web.Response:
    """The ten teams that spent most in the last 30 days, by day; teams are named by alias,
    and those without one share ``Unassigned``, as in LiteLLM."""
    rows = await admin.store.team_spend_by_day(time.time() - RECENT)
    totals: dict[str, float] = defaultdict(float)
    daily: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in rows:
        name = row["team_alias"] or "Unassigned"
        totals[name] += row["spend"]
        daily[row["day"]][name] += row["spend"]
    top = sorted(totals, key=lambda name: (-totals[name], name))[:TOP_TEAMS]
    return json_response({
        "daily_spend": [{"date": day_of(day).date().isoformat(),
                         **{name: round(spent[name], 2) for name in top if name in spent}}
                        for day, spent in sorted(daily.items())
                        if any(name in spent for name in top)],
        "teams": top,
        "total_spend_per_team": [{"team_id": name, "total_spend": round(totals[name], 2)}
                                 for name in top]})


@gated(Rule.SPEND)
async def tags(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, TagsQuery)
    start, end = date_range(query)
    wanted = [tag for tag in (query.tags or "").split(",") if tag]
    rows = await admin.store.spend_by_tag(start, end, wanted or None)
    return json_response({"spend_per_tag": [
        {"name": row["tag"], "spend": row["spend"], "log_count": row["log_count"]}
        for row in rows]})


def date_range(query: DateRange) -> tuple[float, float]:
    """``[start_date 00:00, the day after end_date 00:00)`` in UTC epoch seconds."""
    first, last = query.start_date, query.end_date
    if first is None or last is None:
        raise ClientError(400, "Please provide start_date and end_date", kind="bad_request")
    if last < first:
        raise ClientError(400, "end_date is before start_date", kind="bad_request",
                          param="end_date")
    return day_start(first).timestamp(), day_start(last).timestamp() + DAY


def day_of(day: int) -> datetime:
    return datetime.fromtimestamp(day * DAY, UTC)


async def team_names(admin: Admin, team_ids: set[str]) -> dict[str, str]:
    """Team id -> alias (the id where there is none, or the team is gone)."""
    return {row["team_id"]: row["team_alias"] or row["team_id"]
            for row in await rows_where_in(admin, "teams", "team_id", team_ids)}


def per_day(rows: list[Row], plural: str, label: str) -> list[dict[str, Any]]:
    """``[{"group_by_day", <plural>: [{<label>, "total_spend", "metadata": [...]}]}]``, days
    in order, groups and their key-and-model entries most spent first."""
    days: dict[int, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        days[row["day"]][row["grp"]].append(row)
    out = []
    for day, groups in sorted(days.items()):
        entries = [{label: name, "total_spend": sum(r["spend"] for r in members),
                    "metadata": [{"model": r["model"], "api_key": r["key_hash"],
                                  "spend": r["spend"], "total_tokens": r["total_tokens"]}
                                 for r in sorted(members, key=_most_spent)]}
                   for name, members in groups.items()]
        entries.sort(key=lambda e: (-e["total_spend"], e[label]))
        out.append({"group_by_day": day_of(day).isoformat(), plural: entries})
    return out


def per_key(rows: list[Row]) -> list[dict[str, Any]]:
    """``[{"api_key", "total_cost", "total_input_tokens", "total_output_tokens",
    "model_details": [...]}]``, keys and their models most spent first."""
    keys: dict[str | None, list[Row]] = defaultdict(list)
    for row in rows:
        keys[row["key_hash"]].append(row)
    out = [{"api_key": key_hash,
            "total_cost": sum(r["spend"] for r in models),
            "total_input_tokens": sum(r["prompt_tokens"] for r in models),
            "total_output_tokens": sum(r["completion_tokens"] for r in models),
            "model_details": [{"model": r["model"], "total_cost": r["spend"],
                               "total_input_tokens": r["prompt_tokens"],
                               "total_output_tokens": r["completion_tokens"]}
                              for r in sorted(models, key=_most_spent)]}
           for key_hash, models in keys.items()]
    return sorted(out, key=lambda e: (-e["total_cost"], e["api_key"] or ""))


def _most_spent(row: Row) -> tuple[float, str, str]:
    return -row["spend"], row["model"] or "", row["key_hash"] or ""
