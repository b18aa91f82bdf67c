"""The verdict cache: a cacheable guardrail's verdicts on texts it has seen, so a conversation's
earlier turns are not sent to its vendor again.

A verdict is kept under the guardrail's name, a hash of its effective params, the mode, the
request's ``extra_body`` and the texts as the model reads them (``text.py``'s groups, so a
message split into parts differently reads the same). It is one of ``pass``, ``block`` (the
refusal's message, status and detail, or the answer that replaced the reply) and ``rewrite``
(each text as the guardrail left it).

Chat requests in ``pre_call`` and ``during_call`` are cached message by message: each message
(its role and texts) and the rest of the body's texts are items of their own. The items the
cache knows are settled from it (a rewrite is written back); only the others go to the vendor,
in a copy of the body holding just those messages. A pass, or a rewrite, is then kept for each
item sent; a block is kept for that set of items together (which of them the vendor objected
to is not known). Everything else -- replies, completions, embeddings -- is one item. Per-chunk
stream hooks and logging hooks are never cached. A failed vendor call is never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from ..store.cache import RedisCache
from .base import GuardrailAnswered, GuardrailBlocked
from .text import Group, joined, message_groups, replace_group, request_groups, response_groups

if TYPE_CHECKING:
    from .base import GuardrailParams
    from .call import Call
    from .dispatch import HookImpl
    from ..store.cache import Cache

# Params that change how a verdict is reached or enforced, never which verdict it is.
OPERATIONAL = frozenset({"mode", "default_on", "on_error", "timeout", "enforce", "shadow_of",
                         "shadow_concurrency", "cache_ttl", "latency_budget_ms",
                         "on_budget_exceeded"})
LOCAL_ENTRIES = 10_000  # verdicts one gateway keeps in memory without Redis
PREFIX = "guardrail_verdict:"

Entry = dict[str, Any]


def params_hash(params: GuardrailParams) -> str:
    """The params that decide a verdict, hashed (credentials included: another key may be
    another policy at the vendor)."""
    effective = params.model_dump(exclude=set(OPERATIONAL), warnings=False)
    if params.api_key is not None:
        effective["api_key"] = params.api_key.get_secret_value()
    return hashlib.sha256(orjson.dumps(effective, option=orjson.OPT_SORT_KEYS,
                                       default=str)).hexdigest()[:32]


class VerdictStore:
    """Verdicts in the shared cache (Redis) when there is one, else in this process."""

    def __init__(self) -> None:
        self._shared: Cache | None = None
        self._local: OrderedDict[str, tuple[float, Entry]] = OrderedDict()

    def share(self, cache: Cache) -> None:
        if isinstance(cache, RedisCache):
            self._shared = cache

    async def get(self, keys: list[str]) -> list[Entry | None]:
        if self._shared is not None:
            return list(await asyncio.gather(*(self._shared.get_json(k) for k in keys)))
        now = time.monotonic()
        found: list[Entry | None] = []
        for key in keys:
            held = self._local.get(key)
            if held is not None and held[0] < now:
                del self._local[key]
                held = None
            found.append(None if held is None else held[1])
        return found

    async def put(self, items: dict[str, Entry], ttl: float) -> None:
        if self._shared is not None:
            await asyncio.gather(*(self._shared.set_json(key, entry, ttl)
                                   for key, entry in items.items()))
            return
        expires = time.monotonic() + ttl
        for key, entry in items.items():
            self._local[key] = (expires, entry)
            self._local.move_to_end(key)
        while len(self._local) > LOCAL_ENTRIES:
            self._local.popitem(last=False)


@dataclass(slots=True)
class Item:
    """One cached unit: its key, and the groups of the body it covers."""

    key: str
    groups: list[Group]
    message: Any = None  # the chat message, for a per-message item
    entry: Entry | None = None


def _digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS,
                                       default=str)).hexdigest()


def _items(impl: HookImpl, call: Call, args: dict[str, Any]
           ) -> tuple[list[Item], dict[str, Any] | None]:
    """The hook's input as cache items; for a chat request, also the body less its messages,
    which the rest's item reads (its top-level texts are written back from there)."""
    guardrail = impl.guardrail
    assert guardrail is not None
    if guardrail.params_digest is None:
        guardrail.params_digest = params_hash(guardrail.params)
    base = f"{PREFIX}{impl.name}:{guardrail.params_digest}:{impl.mode}:"
    extra = _digest(args.get("extra_body") or {})[:16]

    def item(groups: list[Group], kind: str, message: Any = None) -> Item:
        role = message.get("role") if isinstance(message, dict) else None
        return Item(base + _digest(extra, kind, role, [joined(g) for g in groups]), groups,
                    message)

    if "response" in args:
        return [item(list(response_groups(args["response"])), "reply")], None
    body = call.body
    messages = body.get("messages")
    if not isinstance(messages, list):
        return [item(list(request_groups(body)), "request")], None
    rest = {k: v for k, v in body.items() if k != "messages"}
    items = [item(list(message_groups(m)), "message", m) for m in messages]
    items.append(item(list(request_groups(rest)), "rest"))
    return items, rest


def _replay(item: Item) -> None:
    texts = item.entry.get("texts") if item.entry else None
    if texts is None:
        return
    for group, text in zip(item.groups, texts):
        if joined(group) != text:
            replace_group(group, text)


def _blocked(entry: Entry) -> GuardrailBlocked:
    if "answer" in entry:
        return GuardrailAnswered(entry["answer"], model=entry.get("model", "guardrail"))
    return GuardrailBlocked(entry["message"], status=entry["status"], detail=entry["detail"])


def _block_entry(blocked: GuardrailBlocked) -> Entry:
    if isinstance(blocked, GuardrailAnswered):
        return {"verdict": "block", "answer": blocked.text, "model": blocked.model}
    return {"verdict": "block", "message": blocked.message, "status": blocked.status,
            "detail": blocked.detail}


def _outcome(item: Item, before: list[str]) -> Entry:
    after = [joined(g) for g in item.groups]
    return {"verdict": "pass"} if after == before else {"verdict": "rewrite", "texts": after}


def cacheable(impl: HookImpl) -> bool:
    guardrail = impl.guardrail
    return (guardrail is not None and guardrail.params.cache_ttl is not None
            and guardrail.engine is not None
            and impl.mode in ("pre_call", "during_call", "post_call")
            and "chunk" not in impl.argnames)


async def cached(impl: HookImpl, call: Call, args: dict[str, Any],
                 invoke: Callable[[dict[str, Any]], Awaitable[None]],
                 counted: Callable[[int, int], None]) -> None:
    """Run ``invoke`` (the hook) on what the cache does not know, settle the rest from it.
    ``args`` are the hook's own (their ``call`` may be a copy made for a run that does not
    enforce). Raises what the hook raised, or the cached block."""
    guardrail = impl.guardrail
    assert guardrail is not None and guardrail.engine is not None
    store = guardrail.engine.verdicts
    target = args["call"] if "call" in args else call
    items, rest = _items(impl, target, args)
    for item, entry in zip(items, await store.get([i.key for i in items])):
        item.entry = entry
    unseen = [i for i in items if i.entry is None]
    batch = _digest([i.key for i in unseen])
    if unseen:
        [held] = await store.get([f"{PREFIX}{impl.name}:batch:{batch}"])
        if held is not None:
            counted(len(items), 0)
            raise _blocked(held)
    for item in items:
        _replay(item)
    counted(len(items) - len(unseen), len(unseen))
    before = [[joined(g) for g in i.groups] for i in unseen]
    hook_args = args
    if rest is not None:
        # The vendor is sent the messages it has not judged, with the rest of the body.
        # (All of them when only the rest is new: a vendor may refuse a chat without one.)
        rest["messages"] = [i.message for i in unseen if i.message is not None] or [
            i.message for i in items if i.message is not None]
        hook_args = {**args, "call": replace(target, body=rest)}
    ttl = guardrail.params.cache_ttl
    assert ttl is not None
    try:
        if unseen:
            await invoke(hook_args)
    except GuardrailBlocked as blocked:
        await store.put({f"{PREFIX}{impl.name}:batch:{batch}": _block_entry(blocked)}, ttl)
        raise
    finally:
        if rest is not None:
            # Top-level texts (``user``, ``prompt``) written in the copy reach the body.
            target.body.update((k, v) for k, v in rest.items() if k != "messages")
    if unseen:
        await store.put({i.key: _outcome(i, b) for i, b in zip(unseen, before)}, ttl)
