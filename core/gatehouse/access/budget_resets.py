"""Scheduled budget resets: every key, user and team whose ``budget_reset_at`` has passed gets
``spend = 0`` and its next reset time (calendar-aligned, from its ``budget_duration``). A budget
row has no spend of its own: its reset zeroes the spend of the end users, memberships and
organizations linked to it, and its next reset is one ``budget_duration`` later (not aligned),
as LiteLLM sets it.

Runs once at start and then every minute. Several gateways on one database may run it at the
same moment: each row is reset by one of them (the update is guarded by the time it was due).
The rows reset are dropped from the key cache, so the next call, on any gateway, reads the new
spend within a second.
"""

from __future__ import annotations

import logging
import time

from . import durations
from .periodic import Periodic
from .principals import KINDS, Principals

log = logging.getLogger("gatehouse.spend")

INTERVAL = 60.0  # seconds between runs
# The kinds of row (principals.KINDS) that have budgets to reset; one line adds another.
RESET_KINDS = ("key", "user", "team")
KIND_OF_TABLE = {table: kind for kind, table in KINDS.items()}


class BudgetResets(Periodic):
    name = "budget-resets"

    def __init__(self, principals: Principals, *, kinds: tuple[str, ...] = RESET_KINDS,
                 interval: float = INTERVAL):
        super().__init__(interval)
        self.principals = principals
        self.kinds = kinds

    async def run_once(self, now: float | None = None) -> dict[str, list[str]]:
        """Reset what is due; return the ids reset, by kind."""
        now = time.time() if now is None else now
        done: dict[str, list[str]] = {}
        for kind in self.kinds:
            reset = await self.principals.store.reset_budgets(KINDS[kind], now,
                                                              durations.next_reset)
            for ident in reset:
                await self.principals.forget(kind, ident)
            if reset:
                log.info("budget reset: %d %s row(s)", len(reset), kind)
                done[kind] = reset
        budgets, zeroed = await self.principals.store.reset_budget_rows(now, durations.after)
        for ident in budgets:
            await self.principals.forget("budget", ident)
        for table, ident in zeroed:
            await self.principals.forget(KIND_OF_TABLE[table], ident)
        if budgets:
            log.info("budget reset: %d budget row(s), %d row(s) linked to them", len(budgets),
                     len(zeroed))
            done["budget"] = budgets
        return done
