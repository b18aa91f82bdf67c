"""Parts of the gateway built on their own, with only what each is handed -- a store, a cache,
prices -- as a script or another service would build them: no Gateway, no app."""

from __future__ import annotations

import time

import pytest

from gatehouse import GuardrailBlocked
from gatehouse.access.accounting import Accounting
from gatehouse.access.credentials import hash_key, key_name, new_key
from gatehouse.access.gate import CallGate
from gatehouse.access.prices import Prices
from gatehouse.access.principals import Principals
from gatehouse.config import config_from_dict
from gatehouse.errors import ClientError
from gatehouse.guardrails.call import Call
from gatehouse.store.cache import LocalCache
from gatehouse.store.sqlite import SqliteStore

MASTER = "sk-parts-test-3b9f0c2d7e1a4f58"


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(str(tmp_path / "parts.db"))
    await store.open()
    yield store
    await store.close()


async def test_principals_and_the_call_gate_work_from_a_store_and_a_cache(store):
    owned, other = new_key(), new_key()
    now = time.time()
    for secret, owner, budget in ((owned, "owner-blocked", None), (other, "owner-ok", 0.0)):
        await store.insert_row("keys", {"key_hash": hash_key(secret), "key_name": key_name(secret),
                                        "user_id": owner, "max_budget": budget,
                                        "created_at": now, "updated_at": now})
    cache = LocalCache()
    principals = Principals(MASTER, store, cache, frozenset({"owner-blocked"}))
    prices = Prices(config_from_dict({"model_list": [{"model_name": "m", "params": {
        "model": "mock/m", "input_cost_per_token": 0.001}}]}).model_list)
    gate = CallGate(principals, Accounting(store, cache, prices, flush_interval=1.0))

    assert (await principals.authenticate(MASTER)).is_admin
    with pytest.raises(ClientError) as unknown:
        await principals.authenticate("sk-not-a-key-at-all-0000")
    assert unknown.value.status == 401

    blocked = await principals.authenticate(owned)
    call = Call(request_id="r1", call_type="chat_completion", model="m",
                body={"messages": [{"role": "user", "content": "hi"}]}, principal=blocked)
    with pytest.raises(GuardrailBlocked, match="User=owner-blocked"):
        await gate.check(call, None)

    broke = await principals.authenticate(other)
    call = Call(request_id="r2", call_type="chat_completion", model="m", body={},
                principal=broke)
    with pytest.raises(ClientError, match="Budget has been exceeded"):
        await gate.check(call, None)
