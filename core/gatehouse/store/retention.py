"""Log retention: spend rows older than ``maximum_spend_logs_retention_period`` and audit rows
older than ``maximum_audit_logs_retention_period`` are deleted.

Rows go in small batches, each its own short transaction, so calls keep being recorded while
a large backlog is cleared. Gateways sharing a database take turns through a lease row: the one
that takes it runs retention and holds it for an interval (renewed after every batch), so only
one of them deletes at a time and the others skip their turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from .database import Store

log = logging.getLogger("gatehouse.retention")

LEASE = "log-retention"
BATCH = 1000  # rows per delete: a few milliseconds of either database's time


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one run deleted: rows and batches, per kind of log."""

    spend_rows: int = 0
    audit_rows: int = 0
    batches: int = 0


class Retention:
    def __init__(self, store: Store, *, spend_period: float | None,
                 audit_period: float | None, interval: float, batch: int = BATCH):
        self.store = store
        self.spend_period = spend_period
        self.audit_period = audit_period
        self.interval = interval
        self.batch = batch
        # Who holds the lease: this process, whatever its host.
        self.holder = uuid.uuid4().hex

    async def run_once(self, now: float | None = None) -> Pruned | None:
        """Delete what has outlived its period; None when another gateway holds the lease."""
        now = time.time() if now is None else now
        if not await self._lease(now):
            return None
        spend = audit = batches = 0
        if self.spend_period is not None:
            spend, n = await self._prune("gatehouse_spend_logs", "start_time",
                                         now - self.spend_period)
            batches += n
        if self.audit_period is not None:
            # Audit times are ISO 8601 text in UTC, which sorts as the times do.
            cutoff = datetime.fromtimestamp(now - self.audit_period, UTC).isoformat()
            audit, n = await self._prune("gatehouse_audit_logs", "updated_at", cutoff)
            batches += n
        if spend or audit:
            log.info("log retention: deleted %d spend row(s) and %d audit row(s)", spend, audit)
        return Pruned(spend, audit, batches)

    async def _prune(self, table: str, column: str, cutoff: object) -> tuple[int, int]:
        deleted = batches = 0
        while True:
            gone = await self.store.delete_older(table, column, cutoff, self.batch)
            deleted += gone
            batches += gone > 0
            if gone < self.batch:
                return deleted, batches
            # Keep the turn through a backlog longer than an interval; one lost (this
            # gateway stalled past its lease) is the next holder's to finish.
            if not await self._lease(time.time()):
                return deleted, batches
            # Let the calls queued behind this batch write theirs before the next.
            await asyncio.sleep(0)

    async def _lease(self, now: float) -> bool:
        return await self.store.take_lease(LEASE, self.holder, now, now + self.interval)
