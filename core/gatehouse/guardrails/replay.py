"""``gatehouse replay``: a candidate config's guardrails run over the calls a gateway stored
(``store_prompts_in_spend_logs``), offline from its clients, to measure a policy on past
traffic before turning it on.

Each guardrail judges each stored call on its own, in each of its modes that has something to
see -- the request (``pre_call``, ``during_call``) and, for a call that got one, the reply
(``post_call``) -- on copies, through the same hook dispatch the gateway uses
(:func:`~gatehouse.guardrails.judging.trial`, as a shadow runs). Its verdicts are compared with
the stored ``guardrail_information`` of the guardrail of the same name on that call.

The text replayed is what the spend row holds: the request as the upstream got it and the reply
as the client got it, both as the logging_only guardrails masked them.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..store.backend import StoreUnavailable
from ..store.database import Store
from ..store.schema import Row
from ..store.sqlite import SqliteStore
from . import monitoring
from .call import Call, Principal
from .judging import Isolated, kind_of, trial, verdict_kind
from .selection import reply_hook

if TYPE_CHECKING:
    from .dispatch import HookImpl
    from .registry import GuardrailSet

MODES = ("pre_call", "during_call", "post_call")
DEFAULT_RATE = 10.0  # vendor calls a second
CONCURRENCY = 8  # stored calls replayed at once
ENABLE = ("enable store_prompts_in_spend_logs (general_settings) on the gateway and replay "
          "the calls made after that")


class ReplayError(Exception):
    """Replay cannot run; worded for the operator."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which stored calls to replay: those started since ``since`` (epoch seconds), of one
    key (its hash) or team, the newest ``limit``."""

    since: float
    key_hash: str | None = None
    team_id: str | None = None
    limit: int | None = None


@dataclass(slots=True)
class Tally:
    """One guardrail's results: calls it had something to check in, those it would have
    blocked, rewritten (and not blocked), failed on, and the verdicts that differ from what
    happened."""

    name: str
    type: str
    checked: int = 0
    would_block: int = 0
    would_rewrite: int = 0
    errors: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"guardrail_name": self.name, "guardrail_type": self.type,
                "checked": self.checked, "would_block": self.would_block,
                "would_rewrite": self.would_rewrite, "errors": self.errors,
                "differences": self.differences}


@dataclass(slots=True)
class Report:
    since: float
    replayed: int  # calls with their text stored, replayed
    without_text: int  # calls the filters found without text, skipped
    tallies: list[Tally]

    def as_json(self) -> dict[str, Any]:
        return {"since": _iso(self.since), "calls_replayed": self.replayed,
                "calls_without_text": self.without_text,
                "guardrails": [tally.as_json() for tally in self.tallies]}

    def text(self) -> str:
        lines = [f"Replayed {self.replayed} stored call{'s' * (self.replayed != 1)} since "
                 f"{_iso(self.since)} through {len(self.tallies)} guardrail"
                 f"{'s' * (len(self.tallies) != 1)}."]
        if self.without_text:
            lines.append(f"{self.without_text} more call(s) in that time have no text "
                         f"stored and were skipped.")
        head = ("guardrail", "type", "checked", "would block", "would rewrite", "errors",
                "differ")
        rows = [head, *((t.name, t.type, t.checked, t.would_block, t.would_rewrite, t.errors,
                         len({d["request_id"] for d in t.differences})) for t in self.tallies)]
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
        lines.append("")
        for row in rows:
            lines.append("  ".join(str(v).ljust(w) if i < 2 else str(v).rjust(w)
                                   for i, (v, w) in enumerate(zip(row, widths))).rstrip())
        for tally in self.tallies:
            if not tally.differences:
                continue
            lines += ["", f"{tally.name}: verdicts that differ from what happened"]
            for diff in tally.differences:
                why = f"  ({diff['reason']})" if diff["reason"] else ""
                lines.append(f"  {diff['request_id']}  {diff['mode']}: then {diff['then']}, "
                             f"now {diff['now']}{why}")
        return "\n".join(lines)


class Pacer:
    """Spaces the starts of vendor calls ``1 / rate`` seconds apart."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


async def open_database(store: Store) -> None:
    """Open the database the candidate config names, refusing to make a new SQLite file: an
    empty one would only say there is nothing to replay."""
    if isinstance(store, SqliteStore) and store.path != ":memory:" \
            and not os.path.exists(store.path):
        raise ReplayError(f"no database at {store.path}: point general_settings.database_url "
                          f"(or database_path) at the gateway's database")
    try:
        await store.open()
    except StoreUnavailable as exc:
        raise ReplayError(f"cannot open the database ({exc})") from None


async def replay(guardrails: GuardrailSet, store: Store, filters: Filters, *,
                 rate: float = DEFAULT_RATE) -> Report:
    """Run ``guardrails`` over the stored calls ``filters`` pick; at most ``rate`` hook runs
    a second of the guardrails that call a vendor."""
    checking = [name for name, guardrail in guardrails.items()
                if any(mode in guardrail.params.mode for mode in MODES)]
    if not checking:
        raise ReplayError("the candidate config has no guardrail in pre_call, during_call or "
                          "post_call mode to replay")
    found, without_text = await store.stored_calls(
        since=filters.since, key_hash=filters.key_hash, team_id=filters.team_id,
        limit=filters.limit)
    rows = [row for row in found if isinstance(row["proxy_server_request"], dict)]
    without_text += len(found) - len(rows)
    if not rows:
        raise ReplayError(f"none of the {without_text} calls stored since "
                          f"{_iso(filters.since)} that match has its text stored: {ENABLE}"
                          if without_text else
                          f"no calls stored since {_iso(filters.since)} match")
    tallies = {name: Tally(name, guardrails[name].params.guardrail) for name in checking}
    pacer = Pacer(rate)
    room = asyncio.Semaphore(CONCURRENCY)

    async def one(row: Row) -> None:
        async with room:
            await _replay_call(row, guardrails, tallies, pacer)

    # Oldest first, so the differences read in the order the calls were made.
    await asyncio.gather(*(one(row) for row in reversed(rows)))
    return Report(filters.since, len(rows), without_text, list(tallies.values()))


async def _replay_call(row: Row, guardrails: GuardrailSet, tallies: dict[str, Tally],
                       pacer: Pacer) -> None:
    request = row["proxy_server_request"]
    reply = row.get("response")
    call = Call(request_id=row["request_id"], call_type=row["call_type"], model=row["model"],
                body=request, stream=request.get("stream") is True,
                principal=Principal(key_hash=row["key_hash"], team_id=row["team_id"],
                                    user_id=row["user_id"]))
    then = _verdicts_then(row)
    for name, tally in tallies.items():
        guardrail = guardrails[name]
        now: dict[str, str] = {}
        for mode in MODES:
            if mode not in guardrail.params.mode:
                continue
            hooks = guardrails.hooks[name]
            if mode == "post_call":
                if not (isinstance(reply, dict) and reply.get("choices")):
                    continue  # refused or failed: no reply to check
                impl = reply_hook(hooks)
                args = {"call": call, "response": reply, "extra_body": {}}
            else:
                impl = hooks[mode]
                args = {"call": call, "extra_body": {}}
            if guardrail.vendor:
                await pacer.wait()
            now[mode] = await _judge(impl, call, args)
        if not now:
            continue
        tally.checked += 1
        kinds = set(now.values())
        tally.would_block += "blocked" in kinds
        tally.would_rewrite += "rewrote" in kinds and "blocked" not in kinds
        tally.errors += "failed" in kinds
        for mode, kind in now.items():
            before, reason = then.get((name, mode), ("not_run", None))
            # A guardrail that did not run then and passes now changes nothing.
            if kind != before and not (before == "not_run" and kind == "passed"):
                run = next(r for r in call.guardrail_runs or () if (r.name, r.mode) ==
                           (name, mode))
                tally.differences.append({"request_id": call.request_id, "mode": mode,
                                          "then": before, "now": kind,
                                          "reason": run.reason or reason})


async def _judge(impl: HookImpl, call: Call, args: dict[str, Any]) -> str:
    """The verdict ``impl`` gives on copies of the stored call, recorded on ``call``."""
    began = time.time()
    run = monitoring.begin(call, impl, began)
    run.note(enforced=False)
    status: monitoring.RunStatus = monitoring.NOT_RUN
    reason: str | None = "cancelled before it reached a verdict"
    try:
        status, reason = await trial(impl, call, Isolated(impl, call, args), run)
    finally:
        run.finish(began, status, reason)
    return kind_of(run)


def _verdicts_then(row: Row) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(guardrail, mode) -> the verdict and reason its run on the call was stored with."""
    entries = (row.get("metadata") or {}).get("guardrail_information") or []
    found = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("guardrail_status"), str):
            reason = entry.get("status_reason")
            found[entry.get("guardrail_name"), entry.get("guardrail_mode")] = (
                verdict_kind(entry["guardrail_status"], reason), reason)
    return found


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
