"""Who is calling: the master key, or a virtual key with its team, its user, the user's team
membership and the team's organization (each with its budget row), and the end user a call is
made for -- every row looked up through a short in-process cache, the shared cache, then the
database.

The in-process cache lives one second, so a key revoked on one gateway stops working on every
gateway within a second. A key's principal, made of several rows, is kept whole until the
oldest of them is a second old: a call costs one dictionary look-up, not one per row. When the database cannot be reached, keys seen before keep working
from the cache (stale rather than refused); unknown keys are refused with a 503.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..config import Config, ConfigError
from ..errors import ClientError
from ..guardrails.call import ANONYMOUS, OPEN, Principal
from ..store.backend import StoreUnavailable
from ..store.cache import Cache
from ..store.database import Store
from ..store.schema import Row, membership_id
from .credentials import KEY_PREFIX, hash_key, key_name
from .key_routes import check_route, is_model_call
from .roles import guardrails_locked

log = logging.getLogger("gatehouse.auth")
T = TypeVar("T")

LOCAL_TTL = 1.0
LOCAL_MAX_ENTRIES = 50_000
SHARED_TTL = 30.0
ADMIN = Principal(is_admin=True)
# What record() looks up by kind -> the store's table; the kind is also the noun its cache
# entries are named by. Another kind joins with one line.
KINDS = {"key": "keys", "team": "teams", "user": "users", "end_user": "end_users",
         "budget": "budgets", "organization": "organizations", "team_member": "team_members",
         "organization_member": "organization_members"}
# A key's own field wins; where it is null, the budget row it links to (budget_id) applies.
BUDGET_FIELDS = ("max_budget", "soft_budget", "tpm_limit", "rpm_limit", "model_max_budget",
                 "max_parallel_requests")


def auth_error(reason: str) -> ClientError:
    return ClientError(401, f"Authentication Error, {reason}", kind="auth_error", param="None")


def _shown_time(epoch: float) -> str:
    return str(datetime.fromtimestamp(epoch, UTC))


def check_expiry(principal: Principal, now: float) -> None:
    expires = (principal.key or {}).get("expires")
    if expires is not None and expires < now:
        raise ClientError(400, f"Authentication Error - Expired Key. Key Expiry time "
                               f"{_shown_time(expires)} and current time "
                               f"{_shown_time(now)}", kind="expired_key",
                          param=principal.key_hash)


def check_team_blocked(principal: Principal) -> None:
    team = principal.team
    if team is not None and team["blocked"]:
        raise ClientError(401, f"Authentication Error, Team={team['team_id']} is blocked. "
                               f"Update via `/team/unblock` if your admin.",
                          kind="auth_error", param="None")


def check_key_standing(principal: Principal, now: float, route: str) -> None:
    """What a virtual key must pass on a route that calls no model: not expired, a route it
    may call, a team not blocked (LiteLLM's order)."""
    check_expiry(principal, now)
    check_route(principal.key or {}, route)
    check_team_blocked(principal)


def key_guardrails(key: Row) -> list[str]:
    """A key's guardrails: in its metadata, as LiteLLM keeps them, or in the column older keys
    have them in."""
    listed = (key.get("metadata") or {}).get("guardrails")
    return listed if isinstance(listed, list) else key.get("guardrails") or []


def with_temp_budget(key: Row, now: float) -> Row:
    """The key with ``/key/update``'s ``temp_budget_increase`` added to its budget until
    ``temp_budget_expiry``."""
    metadata = key["metadata"]
    increase, expiry = metadata.get("temp_budget_increase"), metadata.get("temp_budget_expiry")
    try:
        ends = datetime.fromisoformat(expiry).timestamp() if isinstance(expiry, str) else 0.0
    except ValueError:
        ends = 0.0
    if key.get("max_budget") is None or not isinstance(increase, (int, float)) or ends <= now:
        return key
    return {**key, "max_budget": key["max_budget"] + increase}


def with_budget(key: Row, budget: Row | None) -> Row:
    """The key with its linked budget's limits where its own are not set."""
    if budget is None:
        return key
    return {**key, **{field: budget.get(field) for field in BUDGET_FIELDS
                      if key.get(field) in (None, {}) and budget.get(field) is not None}}


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires: float  # time.monotonic()


class _Fetched:
    """The rows one principal is made of, and when the oldest of them was read."""

    def __init__(self, principals: Principals):
        self.principals = principals
        self.oldest = math.inf

    async def get(self, kind: str, ident: str) -> Row | None:
        row, read_at = await self.principals._lookup(kind, ident)
        self.oldest = min(self.oldest, read_at)
        return row

    async def budget_of(self, row: Row | None) -> Row | None:
        budget_id = (row or {}).get("budget_id")
        return await self.get("budget", budget_id) if budget_id else None


class Principals:
    def __init__(self, master_key: str | None, store: Store, cache: Cache,
                 config_blocked: frozenset[str], *, key_header: str | None = None):
        # general_settings.litellm_key_header_name: the one header keys are read from.
        self.key_header = key_header
        self._master = master_key.encode() if master_key else None
        self.store = store
        self.cache = cache
        # blocked_user_list from config: the admin API cannot lift these.
        self.config_blocked = config_blocked
        self._local: dict[str, tuple[Row | None, float]] = {}
        # Key hash -> its principal, whole: one dict look-up per call instead of one per row.
        self._principals: dict[str, _Entry] = {}
        self._filling: dict[str, asyncio.Future[_Entry]] = {}
        self._reading: dict[str, asyncio.Future[tuple[Row | None, float]]] = {}
        self._generation = 0
        # access/jwt_auth.JwtAuth with enable_jwt_auth: bearer tokens that are JWTs go to it.
        self.jwt: Any = None

    @property
    def enabled(self) -> bool:
        return self._master is not None

    @property
    def anonymous(self) -> Principal:
        """Who a caller of a public route is: nobody in particular, or, on a gateway without a
        master key, anybody (see OPEN)."""
        return ANONYMOUS if self._master is not None else OPEN

    async def authenticate(self, token: str | None, route: str = "") -> Principal:
        """The caller of ``route`` with ``token`` (None: no key sent; ``""``: a malformed
        Authorization header), or the call-path error LiteLLM gives."""
        if self._master is None:
            return OPEN
        if token is None:
            raise auth_error("No api key passed in.")
        if not token:
            raise auth_error("Malformed API Key passed in. Ensure Key has `Bearer ` prefix.")
        try:
            raw = token.encode()
        except UnicodeEncodeError:
            # Header bytes that are not UTF-8 arrive as lone surrogates; no key is made of them.
            raise auth_error("Malformed API Key passed in. Ensure Key has `Bearer ` prefix."
                             ) from None
        if hmac.compare_digest(raw, self._master):
            return ADMIN
        if self.jwt is not None and self.jwt.looks_like_jwt(token):
            return await self.jwt.authenticate(token, route)
        if not token.startswith(KEY_PREFIX):
            # LiteLLM echoes the whole value; it may be a mistyped master key, so only its
            # display form is shown.
            raise auth_error(f"LiteLLM Virtual Key expected. Received={key_name(token)}, "
                             f"expected to start with '{KEY_PREFIX}'.")
        token_hash = hash_key(token)
        entry = self._principals.get(token_hash)
        if entry is None or entry.expires <= time.monotonic():
            entry = await self._fill(token, token_hash)
        principal = entry.principal
        if not is_model_call(route):
            # A model call has these checked by CallGate, in LiteLLM's order: its key's model
            # access comes first.
            check_key_standing(principal, time.time(), route)
        return principal

    async def _fill(self, token: str, token_hash: str) -> _Entry:
        # Concurrent calls of a key whose entry lapsed share one lookup rather than each
        # asking the shared cache (or the database) for the same rows.
        pending = self._filling.get(token_hash)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve(token, token_hash))
            _share(self._filling, token_hash, pending)
        return await asyncio.shield(pending)

    async def _resolve(self, token: str, token_hash: str) -> _Entry:
        """The key's principal from its rows, cached whole until the oldest of those rows is
        LOCAL_TTL old: a change is seen as soon as with row-by-row lookups."""
        generation = self._generation
        rows = _Fetched(self)
        key = await rows.get("key", token_hash)
        if key is None:
            raise ClientError(
                401, f"Authentication Error, Invalid proxy server token passed. Received API "
                     f"Key = {key_name(token)}, Key Hash (Token) ={token_hash}. Unable to find "
                     f"token in cache or `LiteLLM_VerificationTokenTable`",
                kind="token_not_found_in_db", param="key")
        if key["blocked"]:
            raise auth_error("Key is blocked. Update via `/key/unblock` if you're admin.")
        temporary = "temp_budget_increase" in key["metadata"]
        if temporary:
            key = with_temp_budget(key, time.time())
        if key.get("budget_id"):
            key = with_budget(key, await rows.budget_of(key))
        team = await rows.get("team", key["team_id"]) if key["team_id"] else None
        user = await rows.get("user", key["user_id"]) if key["user_id"] else None
        member = organization = None
        if team is not None and key["user_id"]:
            member = await rows.get("team_member", membership_id(team["team_id"],
                                                                 key["user_id"]))
        if team is not None and team.get("organization_id"):
            organization = await rows.get("organization", team["organization_id"])
        # A team's metadata.guardrails is either its own list of guardrails or, as in
        # LiteLLM, {"modify_guardrails": false} to lock its keys' guardrails.
        team_guardrails = ((team or {}).get("metadata") or {}).get("guardrails")
        listed = team_guardrails if isinstance(team_guardrails, list) else []
        guardrails = dict.fromkeys([*listed, *key_guardrails(key)])
        principal = Principal(
            key_hash=key["key_hash"], key_alias=key["key_alias"], team_id=key["team_id"],
            user_id=key["user_id"], permissions=key["permissions"], guardrails=tuple(guardrails),
            team_locked=guardrails_locked(team), key=key, team=team, user=user,
            member=member, member_budget=await rows.budget_of(member),
            organization=organization, organization_budget=await rows.budget_of(organization))
        # A temporary budget increase ends at a time of its own: such keys are not kept.
        expires = -1.0 if temporary else rows.oldest + LOCAL_TTL
        entry = _Entry(principal, expires)
        if generation == self._generation and not temporary:
            self._principals.pop(token_hash, None)
            self._principals[token_hash] = entry
            if len(self._principals) > LOCAL_MAX_ENTRIES:
                del self._principals[next(iter(self._principals))]
        return entry

    async def budget_of(self, row: Row | None) -> Row | None:
        """The budget row a key, membership, organization or end user links to."""
        budget_id = (row or {}).get("budget_id")
        return await self.record("budget", budget_id) if budget_id else None

    async def end_user(self, user_id: str) -> Row | None:
        """An end user's row, cached like keys: blocks and budgets apply on every gateway
        within a second, with no database round trip per call."""
        return await self.record("end_user", user_id)

    async def record(self, kind: str, ident: str) -> Row | None:
        """A row of one of ``KINDS`` by its id, through the caches; stale if the database is
        down."""
        return (await self._lookup(kind, ident))[0]

    async def _lookup(self, kind: str, ident: str) -> tuple[Row | None, float]:
        """The row, and when it was read from the shared cache or the database."""
        cache_key = f"{kind}:{ident}"
        now = time.monotonic()
        cached = self._local.get(cache_key)
        if cached is not None and now - cached[1] < LOCAL_TTL:
            return cached
        # Calls that find the same row lapsed share one read of it.
        reading = self._reading.get(cache_key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(kind, ident, cache_key, cached, now))
            _share(self._reading, cache_key, reading)
        return await asyncio.shield(reading)

    async def _read(self, kind: str, ident: str, cache_key: str,
                    cached: tuple[Row | None, float] | None,
                    now: float) -> tuple[Row | None, float]:
        generation = self._generation
        shared = self.cache
        found: Any = await shared.get_json(cache_key)
        if found is None:
            try:
                found = await self.store.get_row(KINDS[kind], ident)
            except StoreUnavailable as exc:
                if cached is not None:
                    # The store logs the outage once; this would repeat every LOCAL_TTL.
                    log.debug("database unreachable; using the cached %s (%s)", kind, exc)
                    self._remember(cache_key, cached[0], now)
                    return cached[0], now
                raise ClientError(503, "Authentication service unavailable: the database "
                                       "cannot be reached", kind="service_unavailable") from None
            await shared.set_json(cache_key, found or {}, SHARED_TTL)
        found = found or None  # {} marks "no such key" in the shared cache
        if generation == self._generation:
            # Not a row read before a change this gateway made to it.
            self._remember(cache_key, found, now)
        return found, now

    def _remember(self, cache_key: str, row: Row | None, now: float) -> None:
        # Entries outlive LOCAL_TTL on purpose (they are the stale copy used while the
        # database is down), so the dict is bounded: the least recently refreshed goes first.
        self._local.pop(cache_key, None)
        self._local[cache_key] = (row, now)
        if len(self._local) > LOCAL_MAX_ENTRIES:
            del self._local[next(iter(self._local))]

    async def forget(self, kind: str, ident: str) -> None:
        """Drop a changed row of one of ``KINDS`` from both caches (other gateways follow
        within LOCAL_TTL, as their own in-process entries expire)."""
        self._local.pop(f"{kind}:{ident}", None)
        # A principal is made of several rows: any change drops them all (changes are rare),
        # and a lookup already under way when it came does not keep what it read.
        self._principals.clear()
        self._filling.clear()
        self._reading.clear()
        self._generation += 1
        await self.cache.invalidate(f"{kind}:{ident}")


def _share(pending: dict[str, asyncio.Future[T]], name: str, future: asyncio.Future[T]) -> None:
    """Let later callers join ``future`` until it is done (or a change drops it)."""
    pending[name] = future
    future.add_done_callback(
        lambda done: pending.pop(name) if pending.get(name) is done else None)


def config_blocked_users(config: Config, source: str) -> frozenset[str]:
    """``blocked_user_list``: a list of user ids, or a text file of them, one a line."""
    listed = config.settings.blocked_user_list
    if listed is None:
        return frozenset()
    if isinstance(listed, list):
        return frozenset(listed)
    path = config.resolve_path(listed)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError.in_file(
            source, f"{config.written('settings')}.blocked_user_list: cannot read {path}: "
                    f"{exc.strerror}") from None
    return frozenset(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))
