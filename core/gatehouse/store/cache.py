"""Counters and a small shared cache: in-process, or in Redis when ``redis_url`` is set so
that every gateway sees the same budgets, rate-limit windows and cached keys.

When Redis cannot be reached the gateway keeps serving on in-process counters, says so in the
log once, and a background probe watches for Redis to answer again. On recovery the counts
made meanwhile are added to Redis, so a budget spent during the outage stays spent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Awaitable, Callable

import orjson

log = logging.getLogger("gatehouse.cache")

PROBE_INTERVAL = 0.5  # seconds between pings while Redis is unreachable
SWEEP_INTERVAL = 60.0  # seconds between sweeps of expired in-process counters
TIMEOUT = 1.0  # seconds a Redis command may take before Redis counts as unreachable
POOL_SIZE = 100  # connections to Redis a gateway holds at most
# How long an invalidated entry refuses to be cached again: longer than a gateway takes from
# reading the old row in the database to caching it, so that stale copy is never stored.
TOMBSTONE_TTL = 5
TOMBSTONE = b"-"


class LocalCache:
    """Counters with expiry, in this process only."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[float, float]] = {}  # key -> (value, expires)
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    def _live(self, key: str) -> float | None:
        entry = self._counters.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._counters[key]
            return None
        return entry[0]

    def _sweep(self) -> None:
        # Rate-limit windows are never read again once their minute is over; without a sweep
        # every key would leave one counter per minute behind.
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        for key in [k for k, (_, expires) in self._counters.items() if expires < now]:
            del self._counters[key]

    async def incr(self, key: str, amount: float, *, ttl: float, start: float = 0.0) -> float:
        """Add ``amount`` and keep the counter ``ttl`` seconds more; a missing counter begins
        at ``start``."""
        self._sweep()
        current = self._live(key)
        total = (start if current is None else current) + amount
        self._counters[key] = (total, time.monotonic() + ttl)
        return total

    async def value(self, key: str) -> float:
        """The counter; a missing one reads 0."""
        return self._live(key) or 0.0

    async def drop(self, key: str) -> None:
        """Forget a counter: its next ``incr`` begins again at its ``start``."""
        self._counters.pop(key, None)

    # A process has nothing to share: the principals' own short cache is the only copy, and
    # another process on the same database sees a change through the database.

    async def get_json(self, key: str) -> Any:
        return None

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        return None

    async def invalidate(self, key: str) -> None:
        return None

    async def close(self) -> None:
        self._counters.clear()


class RedisCache:
    """The same operations in Redis, on a LocalCache while Redis is unreachable."""

    def __init__(self, url: str, namespace: str):
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One immediate retry replaces a pooled connection that died while idle; more, or a
        # backoff, would only hold calls up before the fallback takes over. A burst of calls
        # larger than the pool waits for a connection: the default pool would raise, and the
        # gateway take Redis for down and count on its own.
        self._redis = redis.Redis.from_pool(redis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=TIMEOUT, socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 1)))
        self._errors = (redis.RedisError, OSError)
        self._prefix = f"{namespace}:"
        self._fallback = LocalCache()
        # What happened while Redis was unreachable, replayed when it answers again.
        self._missed_counts: dict[str, tuple[float, float, float]] = {}
        self._missed_invalidations: set[str] = set()
        self._probe: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        """False from a failed command until the probe finds Redis answering again."""
        return self._probe is None

    async def _run(self, command: Callable[..., Awaitable[Any]], *args: Any,
                   **kwargs: Any) -> tuple[bool, Any]:
        if self._probe is not None:
            return False, None
        try:
            return True, await command(*args, **kwargs)
        except self._errors as exc:
            self._lost(exc)
            return False, None

    def _lost(self, exc: BaseException) -> None:
        if self._probe is not None:
            return
        log.warning("Redis unreachable (%s: %s); using in-process counters until it answers "
                    "again -- limits hold per gateway meanwhile", type(exc).__name__, exc)
        self._probe = asyncio.create_task(self._watch(), name="gatehouse-redis-probe")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            try:
                await self._redis.ping()
                await self._replay()
            except self._errors:
                continue
            # No await between the replay finding nothing left and this line, so nothing can
            # slip into the fallback unreplayed.
            self._probe = None
            await self._fallback.close()
            log.warning("Redis answers again; counters and cache are shared again")
            return

    async def _replay(self) -> None:
        # A key revoked meanwhile must reach the other gateways; counts made meanwhile join
        # the shared ones.
        while self._missed_invalidations or self._missed_counts:
            if self._missed_invalidations:
                keys = list(self._missed_invalidations)
                await self._redis.delete(*(self._prefix + k for k in keys))
                self._missed_invalidations.difference_update(keys)
                continue
            key, (amount, ttl, start) = self._missed_counts.popitem()
            try:
                await self._incr(key, amount, ttl, start)
            except BaseException:
                self._miss_count(key, amount, ttl, start)
                raise

    def _miss_count(self, key: str, amount: float, ttl: float, start: float) -> None:
        # The first start is kept: it is the figure from before the outage, which the
        # database's figure may since have overtaken with the very counts replayed here.
        missed, _, first_start = self._missed_counts.get(key, (0.0, ttl, start))
        self._missed_counts[key] = (missed + amount, ttl, first_start)

    async def _incr(self, key: str, amount: float, ttl: float, start: float) -> float:
        full = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            if start:
                pipe.set(full, start, nx=True, ex=_seconds(ttl))
            pipe.incrbyfloat(full, amount)
            pipe.expire(full, _seconds(ttl))
            results = await pipe.execute()
        return float(results[-2])

    async def incr(self, key: str, amount: float, *, ttl: float, start: float = 0.0) -> float:
        if self._probe is None:
            try:
                return await self._incr(key, amount, ttl, start)
            except self._errors as exc:
                self._lost(exc)
        self._miss_count(key, amount, ttl, start)
        return await self._fallback.incr(key, amount, ttl=ttl, start=start)

    async def drop(self, key: str) -> None:
        await self._fallback.drop(key)
        ok, _ = await self._run(self._redis.delete, self._prefix + key)
        if not ok:
            self._missed_invalidations.add(key)

    async def value(self, key: str) -> float:
        ok, raw = await self._run(self._redis.get, self._prefix + key)
        if not ok:
            return await self._fallback.value(key)
        return float(raw) if raw is not None else 0.0

    async def get_json(self, key: str) -> Any:
        ok, raw = await self._run(self._redis.get, self._prefix + key)
        # Unreachable is a miss: the caller asks the database rather than trusting a copy
        # that no other gateway could invalidate.
        if not ok or raw is None or raw == TOMBSTONE:
            return None
        return orjson.loads(raw)

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        """Store unless the key holds a value -- in particular an invalidation made while
        ``value`` was being read, which makes ``value`` stale."""
        await self._run(self._redis.set, self._prefix + key, orjson.dumps(value),
                        ex=_seconds(ttl), nx=True)

    async def invalidate(self, key: str) -> None:
        ok, _ = await self._run(self._redis.set, self._prefix + key, TOMBSTONE,
                                ex=TOMBSTONE_TTL)
        if not ok:
            self._missed_invalidations.add(key)

    async def ping(self) -> None:
        """Raise when Redis does not answer (readiness asks, whatever the fallback does)."""
        await self._redis.ping()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self._redis.aclose()


def _seconds(ttl: float) -> int:
    return max(1, math.ceil(ttl))


Cache = LocalCache | RedisCache


def make_cache(redis_url: str | None, namespace: str) -> Cache:
    return RedisCache(redis_url, namespace) if redis_url else LocalCache()
