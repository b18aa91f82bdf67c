"""The log-retention job (``store/retention.py``) on the shared schedule, built from
``general_settings``: ``maximum_spend_logs_retention_period`` and
``maximum_audit_logs_retention_period`` (durations such as ``30d``), run every
``maximum_spend_logs_retention_interval`` (default ``1d``)."""

from __future__ import annotations

from ..config import ConfigError
from ..config.general_settings import GeneralSettings
from ..store.retention import Pruned, Retention
from . import durations
from .periodic import Periodic

PERIODS = ("maximum_spend_logs_retention_period", "maximum_audit_logs_retention_period")


class RetentionJob(Periodic):
    name = "log-retention"

    def __init__(self, retention: Retention):
        super().__init__(retention.interval)
        self.retention = retention

    async def run_once(self, now: float | None = None) -> Pruned | None:
        return await self.retention.run_once(now)


def retention_periods(settings: GeneralSettings, source: str) -> dict[str, float] | None:
    """Retention's keyword arguments (seconds) as the settings give them, or None when they
    keep every log; a duration that cannot be read, or 0, is a ConfigError (a typo must not
    silently keep -- or delete -- logs)."""
    seconds: dict[str, float | None] = {}
    for name in (*PERIODS, "maximum_spend_logs_retention_interval"):
        value = getattr(settings, name)
        try:
            seconds[name] = None if value is None else durations.seconds(value)
            if seconds[name] == 0:
                raise ValueError("must be longer than 0")
        except ValueError as exc:
            raise ConfigError.in_file(source, f"general_settings.{name}: {value!r}: {exc}") \
                from None
    if all(seconds[name] is None for name in PERIODS):
        return None
    return {"spend_period": seconds[PERIODS[0]], "audit_period": seconds[PERIODS[1]],
            "interval": seconds["maximum_spend_logs_retention_interval"]}
