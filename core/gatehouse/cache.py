"""Counters and a small shared cache: in-process, or in Redis when ``redis_url`` is set so
that every gateway sees the same budgets, rate-limit windows and cached keys.

When Redis cannot be reached the gateway keeps serving on in-process state, says so in the log
once, and goes back to Redis as soon as it answers again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

log = logging.getLogger("gatehouse.cache")

RETRY_AFTER = 5.0  # seconds before trying Redis again after it failed


class LocalCache:
    """Counters and values with expiry, in this process only."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, float | None]] = {}

    def _live(self, key: str) -> Any:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires < time.monotonic():
            del self._values[key]
            return None
        return value

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        total = (self._live(key) or 0) + amount
        entry = self._values.get(key)
        expires = entry[1] if entry else (time.monotonic() + ttl if ttl else None)
        self._values[key] = (total, expires)
        return total

    async def get_number(self, key: str) -> float:
        return self._live(key) or 0

    async def seed(self, key: str, value: float) -> None:
        if self._live(key) is None:
            self._values[key] = (value, None)

    async def get_json(self, key: str) -> Any:
        return self._live(key)

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        self._values[key] = (value, time.monotonic() + ttl)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._values.pop(key, None)

    async def close(self) -> None:
        self._values.clear()


class RedisCache:
    """The same operations in Redis, falling back to a LocalCache while Redis is down."""

    def __init__(self, url: str, namespace: str):
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                           health_check_interval=10)
        self._errors = (redis.RedisError, OSError)
        self._prefix = f"{namespace}:"
        self._fallback = LocalCache()
        self._down_since: float | None = None

    def _usable(self) -> bool:
        if self._down_since is None:
            return True
        return time.monotonic() - self._down_since >= RETRY_AFTER

    def _failed(self, exc: BaseException) -> None:
        if self._down_since is None:
            log.warning("Redis unreachable (%s); using in-process counters and cache until it "
                        "answers again", type(exc).__name__)
        self._down_since = time.monotonic()

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.warning("Redis answers again; shared counters and cache restored")
            self._down_since = None

    async def _run(self, name: str, *args: Any) -> tuple[bool, Any]:
        if not self._usable():
            return False, None
        try:
            result = await getattr(self._redis, name)(*args)
        except self._errors as exc:
            self._failed(exc)
            return False, None
        self._recovered()
        return True, result

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        full = self._prefix + key
        ok, total = await self._run("incrbyfloat", full, amount)
        if not ok:
            return await self._fallback.incr(key, amount, ttl)
        if ttl and float(total) == amount:  # the first increment made the key: start its window
            await self._run("expire", full, int(ttl))
        return float(total)

    async def get_number(self, key: str) -> float:
        ok, value = await self._run("get", self._prefix + key)
        if not ok:
            return await self._fallback.get_number(key)
        return float(value) if value is not None else 0

    async def seed(self, key: str, value: float) -> None:
        ok, _ = await self._run("set", self._prefix + key, value, None, None, True)  # NX
        if not ok:
            await self._fallback.seed(key, value)

    async def get_json(self, key: str) -> Any:
        ok, raw = await self._run("get", self._prefix + key)
        if not ok:
            return await self._fallback.get_json(key)
        return orjson.loads(raw) if raw is not None else None

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        ok, _ = await self._run("set", self._prefix + key, orjson.dumps(value), max(1, int(ttl)))
        if not ok:
            await self._fallback.set_json(key, value, ttl)

    async def delete(self, *keys: str) -> None:
        await self._fallback.delete(*keys)
        await self._run("delete", *(self._prefix + k for k in keys))

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(redis_url: str | None, namespace: str) -> LocalCache | RedisCache:
    return RedisCache(redis_url, namespace) if redis_url else LocalCache()
