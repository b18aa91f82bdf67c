"""Spend, budgets and rate limits.

Before a call: the budgets and rpm/tpm windows of its key, team, user, membership,
organization and end user (``limits.py``) are checked against shared counters (Redis when
configured, so every gateway enforces the same numbers), and the call's estimated cost is held
on its budgets. After it, off the request path: tokens are priced, the
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
from typing import TYPE_CHECKING, Any

from ..errors import ClientError
from ..guardrails.monitoring import information
from ..store.backend import StoreUnavailable
from ..store.cache import Cache
from ..store.database import Store
from ..store.schema import Row
from . import durations
from .limits import Limits, Rate, Scope, end_user_limits, per_model
from .notices import NO_NOTICES, Notifier
from .parallel import ParallelLimits, rate_limited
from .prices import Prices, usage

if TYPE_CHECKING:
    from ..guardrails.call import Call, Principal

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
        # Key hash -> the principal last seen and its limits.
        self._limits: dict[str, tuple[Principal, Limits]] = {}

    # --- before a call ---------------------------------------------------------------------------

    def limits_of(self, principal: Principal) -> Limits:
        """The principal's limits, worked out once per principal looked up (about once a
        second per key)."""
        cached = self._limits.get(principal.key_hash or "")
        if cached is not None and cached[0] is principal:
            return cached[1]
        limits = Limits.of(principal)
        if principal.key_hash is not None:
            self._limits.pop(principal.key_hash, None)
            self._limits[principal.key_hash] = (principal, limits)
            if len(self._limits) > MAX_PRINCIPALS:
                del self._limits[next(iter(self._limits))]
        return limits

    def check_backlog(self) -> None:
        if len(self.pending) >= MAX_PENDING:
            raise ClientError(503, "The gateway cannot record calls as fast as they arrive; "
                                   "retry shortly", kind="service_unavailable",
                              headers={"retry-after": "1"})

    async def hold(self, call: Call, scopes: list[Scope], estimate: float) -> list[float]:
        """Hold the call's estimated cost on its budgets, in the same atomic step that reads
        them (one round trip to a shared cache): concurrent calls each see the others' holds,
        so they cannot all pass a check that only one of them fits. Returns what each budget
        had spent before; the holds are given back when the call is priced, whatever way it
        ends, or by :meth:`give_back`."""
        if not scopes:
            return []
        # A counter missing from the cache (first use, expired, Redis emptied) starts from the
        # database's figure; from then on every call moves it.
        held = await self.cache.incr_many([(scope.counter, estimate, SPEND_TTL, scope.start)
                                           for scope in scopes])
        if call.reserved is None:
            call.reserved = {}
        for scope in scopes:
            call.reserved[scope.counter] = call.reserved.get(scope.counter, 0.0) + estimate
        return [total - estimate for total in held]

    async def give_back(self, call: Call) -> None:
        """Release a refused call's holds at once, so they hold no other call back."""
        reserved, call.reserved = call.reserved, None
        if reserved:
            await self.cache.incr_many([(counter, -amount, SPEND_TTL, 0.0)
                                        for counter, amount in reserved.items()])

    async def check_model_budget(self, call: Call, limits: Limits) -> None:
        """The key's ``model_max_budget`` for the model called."""
        key = call.principal.key
        if not limits.per_model or key is None:
            return
        budget = model_budget(key, call.model, time.time())
        if budget is not None:
            counter_name, limit, ttl = budget
            spent = await self.cache.value(counter_name)
            if spent >= limit:
                raise ClientError(400, f"Budget has been exceeded for model={call.model}! "
                                       f"Current cost: {spent:.6g}, Max budget: {limit:g}",
                                  kind="budget_exceeded")

    async def check_rates(self, call: Call, limits: Limits, end_user: Rate | None) -> None:
        """The rpm and tpm limits of the key, its team, the key's per-model ones, the user's,
        the membership's and the end user's; the tightest state goes in the reply's
        ``x-ratelimit-*`` headers."""
        if not (limits.rates or limits.per_model or end_user):
            return
        state = RateLimits()
        now = time.time()
        for rate in limits.rates:
            await self._limit_rate(state, now, rate)
        key = call.principal.key
        if limits.per_model and key is not None:
            metadata = key.get("metadata") or {}
            ident = f"{call.principal.key_hash}:{call.model}"
            await self._limit_rate(state, now, Rate(
                "model_per_key", ident, per_model(metadata, key, "model_rpm_limit", call.model),
                per_model(metadata, key, "model_tpm_limit", call.model)))
        if end_user is not None:
            await self._limit_rate(state, now, end_user)
        call.response_headers.update(state.headers)

    async def take_slot(self, call: Call, limits: Limits) -> None:
        """One of the key's parallel-call slots, given back by :meth:`release`."""
        if limits.parallel is not None and call.principal.key_hash is not None:
            await self.parallel.acquire(call, call.principal.key_hash, limits.parallel)

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

    async def release(self, call: Call) -> None:
        """Give back the call's parallel-call slot; the pipeline calls this however the call
        ended."""
        await self.parallel.release(call)

    async def _limit_rate(self, state: RateLimits, now: float, rate: Rate) -> None:
        counter = rate.counter
        await self._count_requests(state, now, counter, rate.rpm, rate.scope, rate.ident)
        await self._check_tokens(state, now, counter, rate.tpm, rate.scope, rate.ident)

    def estimate(self, call: Call) -> float:
        """The most a call is expected to cost: its prompt, and ``max_tokens`` (or a typical
        reply) of completion."""
        if call.cost_per_request is not None:
            return call.cost_per_request
        prompt_tokens, _ = usage(call.body, None)
        completion_tokens = 0
        if call.call_type != "embedding":
            limit = call.body.get("max_completion_tokens", call.body.get("max_tokens"))
            completion_tokens = (limit if isinstance(limit, int) and limit >= 0
                                 else TYPICAL_COMPLETION_TOKENS)
        return self.prices.cost(call.model, prompt_tokens, completion_tokens)

    # --- after a call ----------------------------------------------------------------------------

    async def account(self, call: Call, *, started: float, status: int, response: Any,
                      failed: bool, texts: tuple[Any, Any] | None = None,
                      first_chunk: float | None = None,
                      error: dict[str, Any] | None = None) -> None:
        """Price a finished call, move its counters, and queue its spend row (with when a
        stream's first chunk came, and the error the client was answered, if any).
        ``texts``: the request body and the reply to keep in the row
        (``store_prompts_in_spend_logs``), already masked for the log."""
        prompt_tokens, completion_tokens = usage(call.body, response, failed=failed)
        spend = 0.0 if failed else call.cost_per_request if call.cost_per_request is not None \
            else self.prices.cost(call.model, prompt_tokens, completion_tokens)
        principal = call.principal
        window = int(started // WINDOW)
        cache = self.cache
        reserved = call.reserved or {}
        tokens = prompt_tokens + completion_tokens
        limits = self.limits_of(principal)
        end_user_budget, end_user_rate = end_user_limits(call)
        owed = [(scope, spend - reserved.get(scope.counter, 0.0))
                for scope in (*limits.spenders, end_user_budget) if scope is not None]
        owed = [(scope, amount) for scope, amount in owed if amount]
        counts = [(scope.counter, amount, SPEND_TTL, scope.start) for scope, amount in owed]
        if tokens:
            counters = limits.token_counters
            if end_user_rate is not None and end_user_rate.tpm is not None:
                counters = (*counters, f"tpm:{end_user_rate.counter}")
            key = principal.key
            # Counted only for a key with a token limit on this model: one cache write fewer
            # per call for every other key.
            if limits.per_model and key is not None and per_model(
                    key.get("metadata") or {}, key, "model_tpm_limit", call.model) is not None:
                counters = (*counters, f"tpm:model_per_key:{principal.key_hash}:{call.model}")
            counts += [(f"{counter}:{window}", tokens, WINDOW * 2, 0.0) for counter in counters]
        if counts:
            # One round trip to a shared cache for all of them.
            totals = await cache.incr_many(counts)
            for (scope, _), total in zip(owed, totals):
                if scope.soft is not None and total - spend < scope.soft[2] <= total:
                    self._soft_budget_crossed(*scope.soft, total)
                if scope is limits.key_spender:
                    self.notices.spend_moved("key", principal.key or {}, total - spend, total)
        if limits.per_model and spend and principal.key is not None:
            budget = model_budget(principal.key, call.model, started)
            if budget is not None:
                await cache.incr(budget[0], spend, ttl=budget[2])
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
                **outcome_metadata(status, first_chunk, error),
            },
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "spend": spend,
            "start_time": started, "end_time": time.time(),
            "request_ip": call.client_ip, "status": status,
            "guardrails": dict(call.verdicts),
        })
        if texts is not None:
            request, reply = texts
            self.pending[-1].update(proxy_server_request=request,
                                    response=reply if isinstance(reply, dict) else None)
        backlog = len(self.pending)
        if backlog >= BATCH:
            self._wake.set()
        if backlog >= self._warn_at:
            self._warn_at = backlog * 2
            log.warning("%d spend rows wait to be written: the database takes them slower than "
                        "calls arrive; at %d, calls are refused until it catches up",
                        backlog, MAX_PENDING)

    def _soft_budget_crossed(self, kind: str, label: str, soft: float, total: float) -> None:
        # An alert, not a limit: calls go on until max_budget.
        log.warning("soft budget crossed: %s %s has spent %.6g of its soft budget %g",
                    kind, label, total, soft)

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
                      "metadata, tags, user and text", row["request_id"])
        plain = {**row, "user_id": None, "tags": [],
                 "metadata": {**row["metadata"], "spend_logs_metadata": None},
                 "proxy_server_request": None, "response": None}
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


def outcome_metadata(status: int, first_chunk: float | None,
                     error: dict[str, Any] | None) -> dict[str, Any]:
    """A spend row's ``completion_start_time`` (a stream's first chunk) and LiteLLM's
    ``error_information`` (from the OpenAI-shaped error the client got, so it holds nothing
    the client was not shown), each only when there is one."""
    out: dict[str, Any] = {}
    if first_chunk is not None:
        out["completion_start_time"] = first_chunk
    if error is not None:
        inner = error.get("error") if isinstance(error.get("error"), dict) else error
        message = inner.get("message")
        out["error_information"] = {
            "error_code": str(status), "error_class": inner.get("type"),
            "error_message": message if isinstance(message, str) or message is None
            else str(message)}
    return out


# Seconds a held parallel-call slot outlives the last call of its key: a gateway stopped in
# the middle of calls never gives back their slots, which then lapse this long after.
SLOT_TTL = 600
# Principals whose limits are kept worked out (as many as the principals' own cache).
MAX_PRINCIPALS = 50_000


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

