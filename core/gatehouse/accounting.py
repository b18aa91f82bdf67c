"""Spend, budgets and rate limits.

Before a call: the key's and team's budgets and rpm/tpm windows are checked against shared
counters (Redis when configured, so every gateway enforces the same numbers). After it, off
the request path: tokens are priced, the counters move, and a spend-log row waits in memory for
the next batch write. A batch that cannot be written (database down) stays queued and is written
when the database is back -- writes are idempotent by request id, so nothing is lost or counted
twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from .errors import ClientError
from .store import Row, StoreUnavailable
from .text import request_texts, response_texts

if TYPE_CHECKING:
    from .call import Call
    from .calllog import Outcome
    from .gateway import Gateway

log = logging.getLogger("gatehouse.spend")

WINDOW = 60  # seconds in a rate-limit window
# Seconds a spend counter outlives its last call. Then it is dropped and starts again from the
# database's figure, which by then holds every call: nothing drifts or piles up for ever.
SPEND_TTL = 3600
BATCH = 500
CHARS_PER_TOKEN = 4  # estimate when the upstream reports no usage (streams)


@functools.cache  # read once: cost() falls back on it, and must not read a file per call
def bundled_prices() -> dict[str, tuple[float, float]]:
    raw = orjson.loads(resources.files(__package__).joinpath("prices.json").read_bytes())
    return {name: (float(p[0]), float(p[1])) for name, p in raw.items()
            if not name.startswith("_")}


class Accounting:
    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.prices = self._model_prices()
        self.pending: list[Row] = []
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._held = False  # rows are waiting for the database to come back

    def _model_prices(self) -> dict[str, tuple[float, float]]:
        table = bundled_prices()
        prices = {}
        for entry in self.gateway.config.model_list:
            extra = {**(entry.params.model_extra or {}), **entry.model_info}
            fallback = table.get(entry.params.upstream_model, (0.0, 0.0))
            prices[entry.model_name] = (
                float(extra.get("input_cost_per_token", fallback[0])),
                float(extra.get("output_cost_per_token", fallback[1])))
        return prices

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price_in, price_out = self.prices.get(model) or bundled_prices().get(model, (0.0, 0.0))
        return prompt_tokens * price_in + completion_tokens * price_out

    # --- before a call ---------------------------------------------------------------------------

    async def admit(self, call: Call) -> None:
        """Refuse a call over its key's or team's budget or rate limit."""
        key, team = call.principal.key, call.principal.team
        for kind, row, ident in (("key", key, call.principal.key_hash),
                                 ("team", team, call.principal.team_id)):
            if row is None or ident is None:
                continue
            if row.get("max_budget") is not None:
                spent = await self._spent(kind, ident, row)
                if spent >= row["max_budget"]:
                    raise ClientError(
                        400, f"Budget has been exceeded! {kind.capitalize()}={ident_label(kind, row)}"
                             f" Current cost: {spent:.6g}, Max budget: {row['max_budget']:g}",
                        kind="budget_exceeded")
            window = int(time.time() // WINDOW)
            cache = self.gateway.cache
            if row.get("rpm_limit") is not None:
                used = await cache.incr(f"rpm:{kind}:{ident}:{window}", 1, ttl=WINDOW * 2)
                if used > row["rpm_limit"]:
                    raise ClientError(429, f"Rate limit exceeded: {kind} allows "
                                           f"{row['rpm_limit']} requests per minute",
                                      kind="rate_limit_error")
            if row.get("tpm_limit") is not None:
                used = await cache.value(f"tpm:{kind}:{ident}:{window}")
                if used >= row["tpm_limit"]:
                    raise ClientError(429, f"Rate limit exceeded: {kind} allows "
                                           f"{row['tpm_limit']} tokens per minute",
                                      kind="rate_limit_error")

    async def _spent(self, kind: str, ident: str, row: Row) -> float:
        # A counter missing from the cache (first use, expired, Redis emptied) starts from the
        # database's figure; from then on every call moves it.
        return await self.gateway.cache.seeded_value(
            f"spend:{kind}:{ident}", float(row.get("spend") or 0), ttl=SPEND_TTL)

    # --- after a call ----------------------------------------------------------------------------

    async def account(self, call: Call, outcome: Outcome) -> None:
        prompt_tokens, completion_tokens = usage(call, outcome)
        ok = outcome.error is None
        spend = self.cost(call.model, prompt_tokens, completion_tokens) if ok else 0.0
        principal = call.principal
        window = int(outcome.started // WINDOW)
        cache = self.gateway.cache
        for kind, ident, row in (("key", principal.key_hash, principal.key),
                                 ("team", principal.team_id, principal.team)):
            if ident is None:
                continue
            if spend:
                await cache.incr(f"spend:{kind}:{ident}", spend, ttl=SPEND_TTL,
                                 start=float((row or {}).get("spend") or 0))
            if prompt_tokens + completion_tokens:
                await cache.incr(f"tpm:{kind}:{ident}:{window}",
                                 prompt_tokens + completion_tokens, ttl=WINDOW * 2)
        metadata = call.metadata
        tags = metadata.get("tags")
        tags = tags if isinstance(tags, list) else []
        self.pending.append({
            # The row's own id, made once here, is what makes a retried batch idempotent.
            "id": uuid.uuid4().hex, "request_id": call.request_id,
            "call_type": call.call_type, "model": call.model,
            "key_hash": principal.key_hash, "team_id": principal.team_id,
            "user_id": call.user or principal.user_id, "tags": [str(t) for t in tags],
            "metadata": {
                "spend_logs_metadata": metadata.get("spend_logs_metadata"),
                "user_api_key": principal.key_hash,
                "user_api_key_alias": principal.key_alias,
                "user_api_key_team_id": principal.team_id,
                "user_api_key_user_id": principal.user_id,
                "user_api_key_team_alias": (principal.team or {}).get("team_alias"),
            },
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens, "spend": spend,
            "start_time": outcome.started, "end_time": time.time(),
            "request_ip": call.client_ip, "status": outcome.status,
            "guardrails": dict(call.verdicts),
        })
        if len(self.pending) >= BATCH:
            self._wake.set()

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
        return True

    async def _write(self, batch: list[Row]) -> None:
        try:
            await self.gateway.store.write_spend(batch)
        except StoreUnavailable:
            raise
        except Exception:
            if len(batch) == 1:
                log.exception("spend row of request %s dropped: the database refused it",
                              batch[0]["request_id"])
                return
            # One row the database refuses must not hold back every row after it for ever.
            for row in batch:
                await self._write([row])

    async def _flush_loop(self) -> None:
        interval = self.gateway.config.general_settings.spend_flush_interval
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - keep the loop (and the rows) alive
                log.exception("writing spend rows failed")


def ident_label(kind: str, row: Row) -> str:
    return str(row.get("team_id") if kind == "team" else row.get("key_name"))


def usage(call: Call, outcome: Outcome) -> tuple[int, int]:
    """Prompt and completion tokens: the upstream's figures, or an estimate from the text."""
    response: Any = outcome.response
    reported = response.get("usage") if isinstance(response, dict) else None
    if isinstance(reported, dict) and reported.get("prompt_tokens") is not None:
        return (int(reported.get("prompt_tokens") or 0),
                int(reported.get("completion_tokens") or 0))
    if outcome.error is not None:
        return 0, 0
    prompt = sum(len(t) for t in request_texts(call.body)) // CHARS_PER_TOKEN
    completion = 0
    if isinstance(response, dict):
        completion = sum(len(t) for t in response_texts(response)) // CHARS_PER_TOKEN
    return prompt, completion
