"""Budget periods and expiries: when a LiteLLM duration says a budget resets."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gatehouse.access import durations


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# 2026-11-26 is a Thursday.
NOW = at("2026-11-26 14:37:12")


@pytest.mark.parametrize(("duration", "reset"), [
    ("1d", "2026-11-27 00:00:00"),
    ("3d", "2026-11-29 00:00:00"),
    ("7d", "2026-11-30 00:00:00"),  # the next Monday
    ("1w", "2026-11-30 00:00:00"),
    ("2w", "2026-12-10 00:00:00"),
    ("30d", "2026-12-01 00:00:00"),
    ("1mo", "2026-12-01 00:00:00"),
    ("2mo", "2027-01-01 00:00:00"),
    ("1h", "2026-11-26 15:00:00"),
    ("4h", "2026-11-26 16:00:00"),
    ("5h", "2026-11-26 15:00:00"),
    ("15m", "2026-11-26 14:45:00"),
    ("7m", "2026-11-26 14:42:00"),
    ("50m", "2026-11-26 14:50:00"),
    ("45m", "2026-11-26 14:45:00"),
    ("30s", "2026-11-26 14:37:30"),
])
def test_budgets_reset_on_calendar_boundaries(duration, reset):
    assert iso(durations.next_reset(duration, NOW)) == reset


def test_a_boundary_past_the_hour_is_the_hour():
    assert iso(durations.next_reset("45m", at("2026-11-26 14:50:00"))) == "2026-11-26 15:00:00"


def test_a_budget_reset_at_the_end_of_december_rolls_into_the_next_year():
    assert iso(durations.next_reset("1mo", at("2026-12-31 23:59:59"))) == "2027-01-01 00:00:00"


def test_an_expiry_is_the_duration_from_now():
    assert durations.after("2h", NOW) == NOW + 7200
    assert durations.seconds("1w") == 7 * 86400


@pytest.mark.parametrize("bad", ["", "7", "d", "1y", "-1d", "1.5h", "36501d", "1000000000mo"])
def test_malformed_or_endless_durations_are_refused(bad):
    with pytest.raises(ValueError):
        durations.parse(bad)
