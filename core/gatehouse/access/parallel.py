"""``max_parallel_requests``: how many calls of a key may be in flight at once, counted in the
shared cache so every gateway holds to one number; and LiteLLM's 429 for any rate limit.

A call takes a slot (one increment) when it is admitted and gives it back (one decrement)
when it ends, however it ends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..errors import ClientError
from ..store.cache import Cache

if TYPE_CHECKING:
    from ..guardrails.call import Call


def rate_limited(scope: str, ident: str, unit: str, limit: int, remaining: int, now: float,
                 window: int, headers: dict[str, str]) -> ClientError:
    """LiteLLM's 429: its message, ``type`` and ``param`` the string "None", and when the
    window the call fell in ends."""
    resets = datetime.fromtimestamp((int(now // window) + 1) * window, UTC)
    return ClientError(
        429, f"Rate limit exceeded for {scope}: {ident}. Limit type: {unit}. Current limit: "
             f"{limit}, Remaining: {remaining}. Limit resets at: "
             f"{resets:%Y-%m-%d %H:%M:%S} UTC", kind="None", param="None",
        headers={**headers, "retry-after": str(window), "rate_limit_type": unit,
                 "reset_at": resets.isoformat()})


class ParallelLimits:
    def __init__(self, cache: Cache, slot_ttl: float):
        self.cache = cache
        self.slot_ttl = slot_ttl

    async def acquire(self, call: Call, key_hash: str, limit: int) -> None:
        counter = f"parallel:api_key:{key_hash}"
        held = await self.cache.incr(counter, 1, ttl=self.slot_ttl)
        if held > limit:
            await self.cache.incr(counter, -1, ttl=self.slot_ttl)
            now = datetime.now(UTC).timestamp()
            raise rate_limited("api_key", key_hash, "max_parallel_requests", limit, 0, now, 60,
                               {})
        call.parallel_slot = counter

    async def release(self, call: Call) -> None:
        counter, call.parallel_slot = call.parallel_slot, None
        if counter is not None:
            await self.cache.incr(counter, -1, ttl=self.slot_ttl)
