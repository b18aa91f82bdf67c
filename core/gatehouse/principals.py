"""Who is calling: the master key, or a virtual key with its team, looked up through a short
in-process cache, the shared cache, then the database.

The in-process cache lives one second, so a key revoked on one gateway stops working on every
gateway within a second. When the database cannot be reached, keys seen before keep working
from the cache (stale rather than refused); unknown keys are refused with a 503.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from .call import ANONYMOUS, Principal
from .errors import ClientError
from .store import Row, StoreUnavailable

if TYPE_CHECKING:
    from .gateway import Gateway

log = logging.getLogger("gatehouse.auth")

LOCAL_TTL = 1.0
LOCAL_MAX_ENTRIES = 50_000
SHARED_TTL = 30.0
WELL_KNOWN_KEYS = frozenset({"sk-1234", "sk-12345", "sk-123456", "sk-master", "sk-admin",
                             "password", "changeme", "admin", "secret", "master"})
MIN_MASTER_KEY_LENGTH = 16
ADMIN = Principal(is_admin=True)


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(24)


def key_name(token: str) -> str:
    """How a key is shown after creation: enough to recognise it, not to use it."""
    return f"{token[:3]}...{token[-4:]}"


def weak_master_key(key: str) -> str | None:
    if key.lower() in WELL_KNOWN_KEYS:
        return "it is a well-known example key"
    if len(key) < MIN_MASTER_KEY_LENGTH:
        return f"it is shorter than {MIN_MASTER_KEY_LENGTH} characters"
    return None


class Principals:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        master = gateway.config.general_settings.master_key
        self._master = master.get_secret_value().encode() if master else None
        self._local: dict[str, tuple[Row | None, float]] = {}
        self._blocked: tuple[frozenset[str], float] = (frozenset(), 0.0)

    @property
    def enabled(self) -> bool:
        return self._master is not None

    async def authenticate(self, token: str | None) -> Principal:
        if self._master is None:
            return ANONYMOUS
        if token is None:
            raise ClientError(401, "Authentication Error, no API key passed in "
                                   "(expected 'Authorization: Bearer <key>')", kind="auth_error")
        if hmac.compare_digest(token.encode(), self._master):
            return ADMIN
        key = await self.record("key", hash_key(token))
        if key is None:
            raise ClientError(401, "Authentication Error, invalid API key", kind="auth_error")
        if key["blocked"]:
            raise ClientError(401, "Authentication Error, this key is blocked", kind="auth_error")
        if key["expires"] is not None and key["expires"] < time.time():
            raise ClientError(401, "Authentication Error - Expired Key", kind="auth_error")
        team = await self.record("team", key["team_id"]) if key["team_id"] else None
        if team is not None and team["blocked"]:
            raise ClientError(401, "Authentication Error, this key's team is blocked",
                              kind="auth_error")
        # A team's metadata.guardrails is either its own list of guardrails or, as in
        # LiteLLM, {"modify_guardrails": false} to lock its keys' guardrails.
        team_guardrails = ((team or {}).get("metadata") or {}).get("guardrails")
        listed = team_guardrails if isinstance(team_guardrails, list) else []
        lock = team_guardrails if isinstance(team_guardrails, dict) else {}
        guardrails = dict.fromkeys([*listed, *key["guardrails"]])
        return Principal(
            key_hash=key["key_hash"], key_alias=key["key_alias"], team_id=key["team_id"],
            user_id=key["user_id"], permissions=key["permissions"], guardrails=tuple(guardrails),
            team_locked=lock.get("modify_guardrails") is False, key=key, team=team)

    async def record(self, kind: str, ident: str) -> Row | None:
        """A key (by hash) or team (by id), through the caches; stale if the database is down."""
        cache_key = f"{kind}:{ident}"
        now = time.monotonic()
        cached = self._local.get(cache_key)
        if cached is not None and now - cached[1] < LOCAL_TTL:
            return cached[0]
        shared = self.gateway.cache
        found: Any = await shared.get_json(cache_key)
        if found is None:
            try:
                found = await self.gateway.store.get_row("keys" if kind == "key" else "teams",
                                                         ident)
            except StoreUnavailable as exc:
                if cached is not None:
                    # The store logs the outage once; this would repeat every LOCAL_TTL.
                    log.debug("database unreachable; using the cached %s (%s)", kind, exc)
                    self._remember(cache_key, cached[0], now)
                    return cached[0]
                raise ClientError(503, "Authentication service unavailable: the database "
                                       "cannot be reached", kind="service_unavailable") from None
            await shared.set_json(cache_key, found or {}, SHARED_TTL)
        found = found or None  # {} marks "no such key" in the shared cache
        self._remember(cache_key, found, now)
        return found

    def _remember(self, cache_key: str, row: Row | None, now: float) -> None:
        # Entries outlive LOCAL_TTL on purpose (they are the stale copy used while the
        # database is down), so the dict is bounded: the least recently refreshed goes first.
        self._local.pop(cache_key, None)
        self._local[cache_key] = (row, now)
        if len(self._local) > LOCAL_MAX_ENTRIES:
            del self._local[next(iter(self._local))]

    async def forget(self, kind: str, ident: str) -> None:
        """Drop a changed key or team from both caches (other gateways follow within LOCAL_TTL,
        as their own in-process entries expire)."""
        self._local.pop(f"{kind}:{ident}", None)
        await self.gateway.cache.invalidate(f"{kind}:{ident}")

    async def blocked_users(self) -> frozenset[str]:
        """Users blocked in config or through /customer/block, refreshed once a second."""
        if not self.enabled:  # no master key: no database, only the config's list
            return self.gateway.config_blocked_users
        users, fetched = self._blocked
        now = time.monotonic()
        if now - fetched < LOCAL_TTL:
            return users
        # Concurrent requests keep using the known set while this one refreshes it.
        self._blocked = (users, now)
        try:
            from_db = await self.gateway.store.blocked_users()
        except StoreUnavailable:
            from_db = set(users)  # keep what we knew
        users = frozenset(from_db) | self.gateway.config_blocked_users
        self._blocked = (users, now)
        return users

    def require_admin(self, principal: Principal) -> None:
        if not self.enabled:
            raise ClientError(403, "Admin routes need general_settings.master_key to be set",
                              kind="auth_error")
        if not principal.is_admin:
            raise ClientError(401, "Authentication Error, this route needs the master key",
                              kind="auth_error")
