"""Spend, budgets and rate limits.

Before a call: the key's and team's budgets and rpm/tpm windows are checked against shared
counters (Redis when configured, so every gateway enforces the same numbers), and the call's
estimated cost is held on its budgets. After it, off the request path: tokens are priced, the
counters move by the cost less what was held, and a spend-log row waits in memory for the next
batch write. A batch that cannot be written (database down) stays queued and is written
when the database is back -- writes are idempotent by request id, so nothing is lost or counted
twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ClientError
from ..guardrails.monitoring import information
from ..store.cache import Cache
from ..store.database import Row, Store, StoreUnavailable
from . import durations
from .notices import NO_NOTICES, Notifier
from .parallel import ParallelLimits, rate_limited
from .prices import Prices, usage

if TYPE_CHECKING:
    from ..guardrails.call import Call

log = logging.getLogger("gatehouse.spend")

WINDOW = 60  # seconds in a rate-limit window
# Seconds a spend counter outlives its last call. Then it is dropped and starts again from the
# database's figure, which by then holds every call: nothing drifts or piles up for ever.
SPEND_TTL = 3600
BATCH = 500
# The completion a budget holds for a call that sets no max_tokens.
TYPICAL_COMPLETION_TOKENS = 256
# Spend rows held in memory at most (about 1.5 KB each). There, calls are refused (503) until
# the database has taken the backlog: a call served that cannot be recorded is never billed,
# and a spill file would need an owner, a disk that is not full, and a replay of its own.
MAX_PENDING = 100_000
WARN_PENDING = 10_000  # the backlog first worth a warning; then at every doubling


class Accounting:
    def __init__(self, store: Store, cache: Cache, prices: Prices, *, flush_interval: float,
                 notices: Notifier = NO_NOTICES):
        self.store = store
        self.notices = notices  # told where a key's or team's spend moved (budget alerts)
        self.cache = cache
        self.prices = prices
        self.flush_interval = flush_interval
        self.pending: list[Row] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._held = False  # rows are waiting for the database to come back
        self._warn_at = WARN_PENDING
        self.parallel = ParallelLimits(cache, SLOT_TTL)

    # --- before a call ---------------------------------------------------------------------------

    async def admit(self, call: Call) -> None:
        """Refuse a call over its key's or team's budget or rate limit, its key's per-model
        limits, or a budget or rate limit above them (:func:`identity_budgets`,
        :func:`identity_rate_limits`); put the tightest of their rate-limit states in the
        reply's ``x-ratelimit-*`` headers; then take one of the key's parallel-call slots."""
        if len(self.pending) >= MAX_PENDING:
            raise ClientError(503, "The gateway cannot record calls as fast as they arrive; "
                                   "retry shortly", kind="service_unavailable",
                              headers={"retry-after": "1"})
        key, team = call.principal.key, call.principal.team
        limits = RateLimits()
        estimate = None
        now = time.time()
        for kind, row, ident in (("key", key, call.principal.key_hash),
                                 ("team", team, call.principal.team_id)):
            if row is None or ident is None:
                continue
            if row.get("max_budget") is not None:
                if estimate is None:
                    estimate = self._estimate(call)
                await self._reserve(call, kind, ident, row, estimate)
            await self._limit_rate(limits, now, kind, ident, row)
        if key is not None and call.principal.key_hash is not None:
            await self._admit_model(call, limits, now, key, call.principal.key_hash)
        for scope in identity_budgets(call):
            if estimate is None:
                estimate = self._estimate(call)
            await self._hold(call, scope, estimate)
        for kind, ident, row in identity_rate_limits(call):
            await self._limit_rate(limits, now, kind, ident, row)
        call.response_headers.update(limits.headers)
        if key is not None and key.get("max_parallel_requests") is not None:
            await self.parallel.acquire(call, call.principal.key_hash, key["max_parallel_requests"])

    async def _count_requests(self, limits: RateLimits, now: float, counter: str,
                              limit: int | None, scope: str, ident: str) -> None:
        if limit is None:
            return
        used = await self.cache.incr(f"rpm:{counter}:{int(now // WINDOW)}", 1, ttl=WINDOW * 2)
        limits.note("requests", limit, used)
        if used > limit:
            raise rate_limited(scope, ident, "requests", limit, 0, now, WINDOW, limits.headers)

    async def _check_tokens(self, limits: RateLimits, now: float, counter: str,
                            limit: int | None, scope: str, ident: str) -> None:
        if limit is None:
            return
        used = await self.cache.value(f"tpm:{counter}:{int(now // WINDOW)}")
        limits.note("tokens", limit, used)
        if used >= limit:
            raise rate_limited(scope, ident, "tokens", limit, 0, now, WINDOW, limits.headers)

    async def _admit_model(self, call: Call, limits: RateLimits, now: float, key: Row,
                           key_hash: str) -> None:
        """The key's limits for the model called: ``model_rpm_limit``, ``model_tpm_limit``
        (kept in metadata, as LiteLLM keeps them) and ``model_max_budget``."""
        metadata = key.get("metadata") or {}
        ident = f"{key_hash}:{call.model}"
        counter = f"model_per_key:{ident}"
        await self._count_requests(limits, now, counter,
                                   _per_model(metadata, key, "model_rpm_limit", call.model),
                                   "model_per_key", ident)
        await self._check_tokens(limits, now, counter,
                                 _per_model(metadata, key, "model_tpm_limit", call.model),
                                 "model_per_key", ident)
        budget = model_budget(key, call.model, now)
        if budget is not None:
            counter_name, limit, ttl = budget
            spent = await self.cache.value(counter_name)
            if spent >= limit:
                raise ClientError(400, f"Budget has been exceeded for model={call.model}! "
                                       f"Current cost: {spent:.6g}, Max budget: {limit:g}",
                                  kind="budget_exceeded")

    async def release(self, call: Call) -> None:
        """Give back the call's parallel-call slot; the pipeline calls this however the call
        ended."""
        await self.parallel.release(call)

    async def _limit_rate(self, limits: RateLimits, now: float, kind: str, ident: str,
                          row: Row) -> None:
        scope = SCOPES[kind]
        await self._count_requests(limits, now, f"{scope}:{ident}", row.get("rpm_limit"),
                                   scope, ident)
        await self._check_tokens(limits, now, f"{scope}:{ident}", row.get("tpm_limit"),
                                 scope, ident)

    async def _reserve(self, call: Call, kind: str, ident: str, row: Row,
                       estimate: float) -> None:
        """Hold the call's estimated cost on the budget's counter, in the same atomic step that
        reads it: concurrent calls each see the others' holds, so they cannot all pass a check
        that only one of them fits. The call is refused if the budget was spent already."""
        # A counter missing from the cache (first use, expired, Redis emptied) starts from the
        # database's figure; from then on every call moves it.
        label = "" if kind == "key" else f"{kind.capitalize()}={ident_label(kind, row)} "
        await self._hold(call, Scope(spend_counter(kind, ident, row),
                                     float(row.get("spend") or 0), row["max_budget"], label),
                         estimate)

    async def _hold(self, call: Call, scope: Scope, estimate: float) -> None:
        counter = scope.counter
        held = await self.cache.incr(counter, estimate, ttl=SPEND_TTL, start=scope.start)
        spent = held - estimate
        if spent >= scope.max_budget:
            await self.cache.incr(counter, -estimate, ttl=SPEND_TTL)
            raise ClientError(400, scope.refusal(spent), kind="budget_exceeded")
        # Given back when the call is priced, whatever way it ends.
        call.reserved = {**(call.reserved or {}), counter: estimate}

    def _estimate(self, call: Call) -> float:
        """The most a call is expected to cost: its prompt, and ``max_tokens`` (or a typical
        reply) of completion."""
        prompt_tokens, _ = usage(call.body, None)
        completion_tokens = 0
        if call.call_type != "embedding":
            limit = call.body.get("max_completion_tokens", call.body.get("max_tokens"))
            completion_tokens = (limit if isinstance(limit, int) and limit >= 0
                                 else TYPICAL_COMPLETION_TOKENS)
        return self.prices.cost(call.model, prompt_tokens, completion_tokens)

    # --- after a call ----------------------------------------------------------------------------

    async def account(self, call: Call, *, started: float, status: int, response: Any,
                      failed: bool) -> None:
        """Price a finished call, move its counters, and queue its spend row."""
        prompt_tokens, completion_tokens = usage(call.body, response, failed=failed)
        spend = 0.0 if failed else self.prices.cost(call.model, prompt_tokens,
                                                     completion_tokens)
        principal = call.principal
        window = int(started // WINDOW)
        cache = self.cache
        reserved = call.reserved or {}
        tokens = prompt_tokens + completion_tokens
        for kind, ident, row in (("key", principal.key_hash, principal.key),
                                 ("team", principal.team_id, principal.team)):
            if ident is None:
                continue
            counter = spend_counter(kind, ident, row or {})
            if owed := spend - reserved.get(counter, 0.0):
                total = await cache.incr(counter, owed, ttl=SPEND_TTL,
                                         start=float((row or {}).get("spend") or 0))
                soft = (row or {}).get("soft_budget")
                if soft is not None and total - spend < soft <= total:
                    self._soft_budget_crossed(kind, ident, row or {}, total, soft)
                self.notices.spend_moved(kind, row or {}, total - spend, total)
            if tokens:
                await cache.incr(f"tpm:{SCOPES[kind]}:{ident}:{window}", tokens,
                                 ttl=WINDOW * 2)
        key = principal.key
        if key is not None and principal.key_hash is not None:
            # Counted only for a key with a token limit on this model: one cache write fewer
            # per call for every other key.
            if tokens and _per_model(key.get("metadata") or {}, key, "model_tpm_limit",
                                     call.model) is not None:
                await cache.incr(f"tpm:model_per_key:{principal.key_hash}:{call.model}:"
                                 f"{window}", tokens, ttl=WINDOW * 2)
            budget = model_budget(key, call.model, started)
            if budget is not None and spend:
                await cache.incr(budget[0], spend, ttl=budget[2])
        for scope in identity_budgets(call):
            if owed := spend - reserved.get(scope.counter, 0.0):
                await cache.incr(scope.counter, owed, ttl=SPEND_TTL, start=scope.start)
        if spend and (user_scope := team_key_user_spend(call)) is not None:
            await cache.incr(user_scope.counter, spend, ttl=SPEND_TTL, start=user_scope.start)
        if tokens:
            for kind, ident, row in identity_rate_limits(call):
                if row.get("tpm_limit") is not None:
                    await cache.incr(f"tpm:{SCOPES[kind]}:{ident}:{window}", tokens,
                                     ttl=WINDOW * 2)
        if failed and len(self.pending) >= MAX_PENDING:
            return  # nothing to bill: the calls refused while the backlog is full leave no row
        metadata = call.metadata
        response_id = response.get("id") if isinstance(response, dict) else None
        tags = metadata.get("tags")
        tags = tags if isinstance(tags, list) else []
        self.pending.append({
            # The row's own id, made once here, is what makes a retried batch idempotent.
            "id": uuid.uuid4().hex, "request_id": call.request_id,
            "response_id": response_id if isinstance(response_id, str) else None,
            "call_type": call.call_type, "model": call.model,
            "key_hash": principal.key_hash, "team_id": principal.team_id,
            "user_id": call.user or principal.user_id, "tags": [str(t) for t in tags],
            "end_user": call.user,
            "metadata": {
                "spend_logs_metadata": metadata.get("spend_logs_metadata"),
                "user_api_key": principal.key_hash,
                "user_api_key_alias": principal.key_alias,
                "user_api_key_team_id": principal.team_id,
                "user_api_key_user_id": principal.user_id,
                "user_api_key_team_alias": (principal.team or {}).get("team_alias"),
                # LiteLLM's spend logs keep the guardrail runs here too.
                "guardrail_information": information(call),
            },
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "spend": spend,
            "start_time": started, "end_time": time.time(),
            "request_ip": call.client_ip, "status": status,
            "guardrails": dict(call.verdicts),
        })
        backlog = len(self.pending)
        if backlog >= BATCH:
            self._wake.set()
        if backlog >= self._warn_at:
            self._warn_at = backlog * 2
            log.warning("%d spend rows wait to be written: the database takes them slower than "
                        "calls arrive; at %d, calls are refused until it catches up",
                        backlog, MAX_PENDING)

    def _soft_budget_crossed(self, kind: str, ident: str, row: Row, total: float,
                             soft: float) -> None:
        # An alert, not a limit: calls go on until max_budget.
        log.warning("soft budget crossed: %s %s has spent %.6g of its soft budget %g",
                    kind, ident_label(kind, row), total, soft)

    # --- writing ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._flusher = asyncio.create_task(self._flush_loop(), name="gatehouse-spend")

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if not await self.flush():
            log.error("database unreachable at shutdown: %d spend rows not written",
                      len(self.pending))

    async def flush(self) -> bool:
        """Write what is pending; False (and nothing dropped) if the database is down."""
        try:
            while self.pending:
                batch = self.pending[:BATCH]
                await self._write(batch)
                del self.pending[:len(batch)]
        except StoreUnavailable as exc:
            if not self._held:
                log.warning("database unreachable; spend rows wait in memory until it "
                            "returns (%s)", exc)
                self._held = True
            return False
        if self._held:
            log.warning("database reachable again; the spend rows held meanwhile are written")
            self._held = False
        self._warn_at = WARN_PENDING
        return True

    async def _write(self, batch: list[Row]) -> None:
        try:
            await self.store.write_spend(batch)
        except StoreUnavailable:
            raise
        except Exception:
            if len(batch) > 1:
                # One row the database refuses must not hold back every row after it for ever.
                for row in batch:
                    await self._write([row])
                return
            await self._write_plain(batch[0])

    async def _write_plain(self, row: Row) -> None:
        """A row the database refused, without the fields a client or plugin wrote: the call
        is billed though its metadata, tags and user are lost."""
        log.exception("spend row of request %s refused by the database; stored without its "
                      "metadata, tags and user", row["request_id"])
        plain = {**row, "user_id": None, "tags": [],
                 "metadata": {**row["metadata"], "spend_logs_metadata": None}}
        try:
            await self.store.write_spend([plain])
        except StoreUnavailable:
            raise
        except Exception:  # noqa: BLE001 - the log line is then the only record left
            log.exception("spend row could not be stored: request %s, key %s, team %s, "
                          "%d tokens, spend %s", row["request_id"], row["key_hash"],
                          row["team_id"], row["total_tokens"], row["spend"])

    async def _flush_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - keep the loop (and the rows) alive
                log.exception("writing spend rows failed")


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget a call is held against: its shared spend counter, the spend the counter starts
    from when the cache has none, the limit, and how an overrun is worded."""

    counter: str
    start: float
    max_budget: float
    label: str = ""
    user: str | None = None  # a user's own budget is worded as LiteLLM words it

    def refusal(self, spent: float) -> str:
        if self.user is not None:
            return (f"ExceededBudget: User={self.user} over budget. Spend={spent:.6g}, "
                    f"Budget={self.max_budget:g}")
        return (f"Budget has been exceeded! {self.label}Current cost: {spent:.6g}, "
                f"Max budget: {self.max_budget:g}")


def identity_budgets(call: Call) -> list[Scope]:
    """The budgets above the key and team that bind a call: the key's user (personal keys
    only), the user's membership of the team, the team's organization, and the end user."""
    principal = call.principal
    scopes = []
    member = principal.member
    if principal.team_id is None and (user := user_budget(principal.user)) is not None:
        scopes.append(user)
    for counter, row, budget, label in (
            ("team_member", member, principal.member_budget, ""),
            ("organization", principal.organization, principal.organization_budget,
             f"Organization={(principal.organization or {}).get('organization_id')} "),
            ("end_user", call.end_user, call.end_user_budget, "")):
        if row is not None and budget is not None and budget.get("max_budget") is not None:
            ident = row.get("membership_id") or row.get("organization_id") or row["user_id"]
            # The budget row's reset period names the counter: its reset zeroes this row.
            scopes.append(Scope(spend_counter(counter, ident, budget), float(row["spend"]),
                                budget["max_budget"], label))
    return scopes


def team_key_user_spend(call: Call) -> Scope | None:
    """The budget of a team key's user, which the call is not held to but is charged to: a
    user's spend is what all their keys spent, as in LiteLLM (and as the database adds it), so
    their personal keys stop once their team keys have spent the user's budget."""
    return None if call.principal.team_id is None else user_budget(call.principal.user)


def user_budget(user: Row | None) -> Scope | None:
    if user is None or user.get("max_budget") is None:
        return None
    return Scope(spend_counter("user", user["user_id"], user), float(user["spend"]),
                 user["max_budget"], user=user["user_id"])


def identity_rate_limits(call: Call) -> list[tuple[str, str, Row]]:
    """The rate limits above the key and team: the key's user's own, the user's team
    membership's and the end user's (each on their budget row)."""
    principal = call.principal
    scopes = []
    for kind, row, limits in (
            ("user", principal.user, principal.user),
            ("team_member", principal.member, principal.member_budget),
            ("end_user", call.end_user, call.end_user_budget)):
        if row is not None and limits is not None and (
                limits.get("rpm_limit") is not None or limits.get("tpm_limit") is not None):
            # A membership is named "<team>:<user>", as LiteLLM's 429 names it.
            ident = f"{row['team_id']}:{row['user_id']}" if kind == "team_member" \
                else row["user_id"]
            scopes.append((kind, ident, limits))
    return scopes


# How LiteLLM names each limit's owner in its 429 messages and headers.
SCOPES = {"key": "api_key", "team": "team", "user": "user", "team_member": "team_member",
          "end_user": "end_user"}
# Seconds a held parallel-call slot outlives the last call of its key: a gateway stopped in
# the middle of calls never gives back their slots, which then lapse this long after.
SLOT_TTL = 600


def spend_counter(kind: str, ident: str, row: Row) -> str:
    """The cache counter of a spender's spend in its current budget period: a reset
    (which moves ``budget_reset_at``) starts a new counter from the database's figure, so a
    gateway still holding the row from before the reset cannot carry the old spend over."""
    period = row.get("budget_reset_at")
    return f"spend:{kind}:{ident}" if period is None else f"spend:{kind}:{ident}:{period:.0f}"


def _per_model(metadata: dict[str, Any], key: Row, field: str, model: str) -> int | None:
    limits = metadata.get(field) or key.get(field)
    value = limits.get(model) if isinstance(limits, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def model_budget(key: Row, model: str, now: float) -> tuple[str, float, float] | None:
    """``(counter, budget_limit, ttl)`` of the key's ``model_max_budget`` entry for ``model``,
    the counter named by the calendar-aligned period it falls in."""
    entry = (key.get("model_max_budget") or {}).get(model)
    if not isinstance(entry, dict) or not isinstance(entry.get("budget_limit"), (int, float)):
        return None
    period = entry.get("time_period")
    try:
        ends = durations.next_reset(period, now) if isinstance(period, str) else None
    except ValueError:
        ends = None
    ttl = (ends - now + 60) if ends is not None else SPEND_TTL
    return (f"spend:model_per_key:{key.get('key_hash')}:{model}:{ends or 0:.0f}",
            float(entry["budget_limit"]), ttl)


class RateLimits:
    """The tightest rate-limit state of a call's key and team, as OpenAI-style headers."""

    __slots__ = ("headers", "_remaining")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self._remaining: dict[str, float] = {}

    def note(self, unit: str, limit: int, used: float) -> None:
        remaining = max(0, limit - used)
        if remaining < self._remaining.get(unit, math.inf):
            self._remaining[unit] = remaining
            self.headers[f"x-ratelimit-limit-{unit}"] = str(limit)
            self.headers[f"x-ratelimit-remaining-{unit}"] = str(int(remaining))


def ident_label(kind: str, row: Row) -> str:
    return str(row.get("team_id") if kind == "team" else row.get("key_name"))
