"""A background job run once at start and then every ``interval`` seconds, whose one failed run
(the database down, say) does not end the schedule."""

from __future__ import annotations

import abc
import asyncio
import logging

from ..store.backend import StoreUnavailable

log = logging.getLogger("gatehouse.jobs")


class Periodic(abc.ABC):
    #: What the job is called in its task's name and in the log.
    name = ""

    def __init__(self, interval: float):
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run_once(self, now: float | None = None) -> object:
        """Do what is due at ``now`` (default: the current time)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"gatehouse-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except StoreUnavailable:
                pass  # the store has logged the outage; the next run catches up
            except Exception:  # noqa: BLE001 - the schedule must outlive one failed run
                log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval)
