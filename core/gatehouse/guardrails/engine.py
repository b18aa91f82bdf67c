"""What one gateway's guardrails share: the verdict cache, and the runs that finish off the
request path (shadows, and checks demoted past their latency budget) with the limit on how many
shadow runs each guardrail has in flight.

A call keeps its background runs in ``Call.background``; the call log waits for them before it
writes the call's record, so their verdicts are in its ``guardrail_information``.
"""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any, Coroutine

import orjson

from .verdicts import VerdictStore

if TYPE_CHECKING:
    from ..store.cache import Cache
    from .call import Call


class Engine:
    def __init__(self) -> None:
        self.verdicts = VerdictStore()
        self._in_flight: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def share(self, cache: Cache) -> None:
        """Keep verdicts in the gateway's shared cache when it is Redis."""
        self.verdicts.share(cache)

    def claim(self, name: str, limit: int) -> bool:
        """A slot for one more background run of ``name``; False when ``limit`` are running."""
        held = self._in_flight.get(name, 0)
        if held >= limit:
            return False
        self._in_flight[name] = held + 1
        return True

    def release(self, name: str) -> None:
        self._in_flight[name] -= 1

    def background(self, call: Call, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` off the request path, as part of ``call``."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if call.background is None:
            call.background = []
        call.background.append(task)

    async def drain(self) -> None:
        """Wait for every background run (each is bounded by its guardrail's timeout)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def pending(call: Call) -> list[asyncio.Task[None]]:
    """The call's background guardrail runs still going."""
    return [task for task in call.background or () if not task.done()]


def clone(value: Any) -> Any:
    """A deep copy of a parsed JSON body (orjson's round trip is several times faster than
    ``copy.deepcopy`` on one)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return copy.deepcopy(value)
