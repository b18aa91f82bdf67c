"""Durations as LiteLLM writes them (``30s``, ``10m``, ``2h``, ``7d``, ``2w``, ``1mo``) and the
times they lead to: a key's expiry, a budget's next reset.

Resets are aligned to the calendar (UTC) so that every budget with the same period resets at
the same moment, as LiteLLM's do: ``1d`` at the next midnight, ``7d``/``1w`` on the next
Monday, ``30d``/``1mo`` on the first of the next month, other day counts at midnight that many
days from today, and hours, minutes or seconds at the next clock boundary that is a multiple of
the count.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

DURATION = re.compile(r"(\d+)(mo|[smhdw])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
# Beyond this a date is past what the databases' dates hold; nothing needs to last longer.
MAX_DAYS = 36500
FORMAT_HINT = 'expected a number and a unit s, m, h, d, w or mo, e.g. "30s", "7d" or "1mo"'


def parse(duration: str) -> tuple[int, str]:
    """``(count, unit)``; ValueError with a message fit for the client otherwise."""
    match = DURATION.fullmatch(duration.strip())
    if match is None:
        raise ValueError(FORMAT_HINT)
    count, unit = int(match[1]), match[2]
    if count * SECONDS[unit] > MAX_DAYS * SECONDS["d"]:
        raise ValueError(f"at most {MAX_DAYS} days")
    return count, unit


def seconds(duration: str) -> int:
    count, unit = parse(duration)
    return count * SECONDS[unit]


def after(duration: str, now: float) -> float:
    """``now`` plus the duration: an expiry set by ``/key/update`` or a budget row's reset."""
    return now + seconds(duration)


def next_reset(duration: str, now: float) -> float:
    """The calendar-aligned moment after ``now`` at which a budget of this period resets."""
    count, unit = parse(duration)
    at = datetime.fromtimestamp(now, timezone.utc)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "mo" or (unit == "d" and count == 30):
        months = count if unit == "mo" else 1
        month_index = at.year * 12 + at.month - 1 + months
        return midnight.replace(year=month_index // 12, month=month_index % 12 + 1,
                                day=1).timestamp()
    if (unit, count) in (("d", 7), ("w", 1)):
        return (midnight + timedelta(days=7 - at.weekday())).timestamp()
    if unit in ("d", "w"):
        return (midnight + timedelta(days=count * (7 if unit == "w" else 1))).timestamp()
    # Hours count from midnight, minutes from the hour, seconds from the minute.
    start = {"h": midnight, "m": at.replace(minute=0, second=0, microsecond=0),
             "s": at.replace(second=0, microsecond=0)}[unit]
    step = count * SECONDS[unit]
    elapsed = int((at - start).total_seconds())
    boundary = start + timedelta(seconds=(elapsed // step + 1) * step)
    container = {"h": timedelta(days=1), "m": timedelta(hours=1), "s": timedelta(minutes=1)}[unit]
    return min(boundary, start + container).timestamp()
