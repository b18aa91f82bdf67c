"""The guardrail inside a running gateway, with the Llama Guard model as a second fake upstream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

import gatehouse_llamaguard
from gatehouse.config import ConfigError
from gatehouse.gateway import StartupError
from gatehouse.testing import FakeUpstream

APPLIED = ("x-gatehouse-applied-guardrails", "x-litellm-applied-guardrails")

CUSTOM_CATEGORIES = """\
O1: Violence and Hate.
Should not
- Help people plan or carry out violence.
O2: Criminal Planning.
Should not
- Help people plan crimes such as theft or kidnapping.
"""


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


async def chat(client: TestClient, *messages: dict[str, Any], **extra: Any):
    return await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": list(messages), **extra})


def blocked_body(codes: list[str], names: list[str]) -> dict[str, Any]:
    detail = {"llamaguard_response": {"categories": codes, "category_names": names}}
    return {"error": {"message": f"Violated content safety policy: {orjson.dumps(detail).decode()}",
                      "details": {"error": "Violated content safety policy", **detail},
                      "type": "guardrail_violation", "param": None, "code": "400"}}


def prompt_parts(guard: FakeUpstream) -> tuple[str, str]:
    """The last prompt the Llama Guard model got, as (its instructions around the conversation,
    the conversation)."""
    messages = guard.last["messages"]
    assert [m["role"] for m in messages] == ["user"]
    before, rest = messages[0]["content"].split("<BEGIN CONVERSATION>")
    conversation, after = rest.split("<END CONVERSATION>")
    return before + after, conversation.strip()


def applied(resp) -> list[str | None]:
    return [resp.headers.get(header) for header in APPLIED]


# --- judging the caller's turn ---------------------------------------------------------------


async def test_unsafe_prompt_is_blocked_before_the_upstream_is_called(
        start, guard_model, fake_upstream):
    guard_model.reply = "unsafe\nS1,S10"
    client = await start(mode="pre_call")

    resp = await chat(client, user("how do I hurt my neighbour"))

    assert resp.status == 400
    assert await resp.json() == blocked_body(["S1", "S10"], ["Violent Crimes", "Hate"])
    assert applied(resp) == ["content-safety", "content-safety"]
    assert fake_upstream.received == []


async def test_safe_prompt_reaches_the_upstream(start, guard_model, fake_upstream):
    client = await start(mode="pre_call")

    resp = await chat(client, user("what is the capital of France"))

    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    assert fake_upstream.last["messages"] == [user("what is the capital of France")]
    assert applied(resp) == ["content-safety", "content-safety"]
    assert len(guard_model.received) == 1


async def test_prompt_holds_the_whole_conversation_and_judges_the_user(start, guard_model):
    client = await start(mode="pre_call")

    await chat(client, {"role": "system", "content": "Be brief."}, user("first question"),
               assistant("first answer"), user("second question"))

    assert guard_model.last["model"] == "llama-guard"
    instructions, conversation = prompt_parts(guard_model)
    assert conversation == ("User: Be brief.\n\nUser: first question\n\n"
                            "Agent: first answer\n\nUser: second question")
    assert "User" in instructions and "Agent" not in instructions
    categories = instructions.split("<BEGIN UNSAFE CONTENT CATEGORIES>")[1].split(
        "<END UNSAFE CONTENT CATEGORIES>")[0]
    assert "S1: Violent Crimes" in categories
    assert "S11: Suicide & Self-Harm" in categories
    assert "S14: Code Interpreter Abuse" in categories


async def test_during_call_block_discards_the_reply(start, guard_model):
    guard_model.reply = "unsafe\nS9"
    client = await start(mode="during_call")

    resp = await chat(client, user("how to build a bomb"))

    assert resp.status == 400
    assert await resp.json() == blocked_body(["S9"], ["Indiscriminate Weapons"])


# --- judging the reply -----------------------------------------------------------------------


async def test_post_call_judges_the_reply_as_the_agent(start, guard_model, fake_upstream):
    fake_upstream.reply = "Pick the lock with a tension wrench."
    guard_model.reply = "unsafe\nS2"
    client = await start(mode="post_call")

    resp = await chat(client, user("how do I open my neighbour's door"))

    assert resp.status == 400
    assert await resp.json() == blocked_body(["S2"], ["Non-Violent Crimes"])
    assert len(guard_model.received) == 1
    instructions, conversation = prompt_parts(guard_model)
    assert conversation == ("User: how do I open my neighbour's door\n\n"
                            "Agent: Pick the lock with a tension wrench.")
    assert "Agent" in instructions and "User" not in instructions


async def test_post_call_passes_a_safe_reply(start, guard_model, fake_upstream):
    client = await start(mode="post_call")

    resp = await chat(client, user("hello"))

    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    assert prompt_parts(guard_model)[1].endswith(f"Agent: {fake_upstream.reply}")


async def test_unsafe_streamed_reply_is_never_sent(start, guard_model, fake_upstream):
    fake_upstream.reply = "Pick the lock with a tension wrench."
    guard_model.reply = "unsafe\nS2"
    client = await start(mode="post_call")

    resp = await chat(client, user("how do I open the door"), stream=True)
    text = await resp.text()

    assert "tension wrench" not in text
    assert "Violated content safety policy" in text
    assert "Agent: Pick the lock with a tension wrench." in prompt_parts(guard_model)[1]


# --- categories ------------------------------------------------------------------------------


async def test_custom_categories_file_is_used(start, guard_model, tmp_path: Path):
    (tmp_path / "policy.txt").write_text(CUSTOM_CATEGORIES)
    guard_model.reply = "unsafe\nO2"
    client = await start(mode="pre_call", llamaguard_unsafe_content_categories="policy.txt")

    resp = await chat(client, user("help me plan a kidnapping"))

    assert await resp.json() == blocked_body(["O2"], ["Criminal Planning"])
    instructions, _ = prompt_parts(guard_model)
    assert CUSTOM_CATEGORIES.strip() in instructions
    assert "Violent Crimes" not in instructions


async def test_answer_naming_a_category_outside_the_file_fails_closed(
        start, guard_model, tmp_path: Path):
    (tmp_path / "policy.txt").write_text(CUSTOM_CATEGORIES)
    guard_model.reply = "unsafe\nS1"
    client = await start(mode="pre_call", llamaguard_unsafe_content_categories="policy.txt")

    resp = await chat(client, user("hello"))

    assert resp.status == 502
    assert "'S1'" in (await resp.json())["error"]["message"]


async def test_missing_categories_file_is_a_config_error(start, tmp_path: Path):
    with pytest.raises(ConfigError) as error:
        await start(llamaguard_unsafe_content_categories="no-such-policy.txt")

    message = str(error.value)
    assert "guardrails[0].params.llamaguard_unsafe_content_categories" in message
    assert str(tmp_path / "no-such-policy.txt") in message


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["I cannot judge this.", "Safe", "unsafe", "safe\nS1"])
async def test_malformed_answer_fails_closed(start, guard_model, fake_upstream, answer):
    guard_model.reply = answer
    client = await start(mode="pre_call")

    resp = await chat(client, user("hello"))

    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["type"] == "guardrail_error"
    assert "'content-safety'" in error["message"]
    assert "'llama-guard'" in error["message"]
    assert fake_upstream.received == []


async def test_malformed_answer_passes_with_fail_open(start, guard_model, fake_upstream):
    guard_model.reply = "I cannot judge this."
    client = await start(mode="pre_call", on_error="fail_open")

    resp = await chat(client, user("hello"))

    assert resp.status == 200
    assert len(fake_upstream.received) == 1


async def test_llama_guard_model_error_fails_closed(start, guard_model, fake_upstream):
    guard_model.fail(500)
    client = await start(mode="pre_call")

    resp = await chat(client, user("hello"))

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "'content-safety'" in message and "'llama-guard'" in message and "500" in message
    assert fake_upstream.received == []


async def test_llama_guard_model_error_passes_with_fail_open(start, guard_model, fake_upstream):
    guard_model.fail(503)
    client = await start(mode="pre_call", on_error="fail_open")

    resp = await chat(client, user("hello"))

    assert resp.status == 200
    assert len(fake_upstream.received) == 1


@pytest.mark.parametrize("slow", ["guardrail timeout", "model timeout"])
async def test_stalled_llama_guard_model_fails_closed_with_504(
        start, guard_model, model_list, fake_upstream, slow):
    release = asyncio.Event()
    guard_model.before_reply = lambda body: release.wait()
    params: dict[str, Any] = {"mode": "pre_call"}
    if slow == "guardrail timeout":
        params["timeout"] = 0.05
    else:
        model_list[1] = guard_model.model_entry("llama-guard", timeout=0.05)
    client = await start(**params)

    resp = await chat(client, user("hello"))
    release.set()

    assert resp.status == 504
    assert "'content-safety'" in (await resp.json())["error"]["message"]
    assert fake_upstream.received == []


async def test_model_name_missing_from_model_list_stops_start_up(start):
    with pytest.raises(StartupError) as error:
        await start(llamaguard_model_name="llama-guard-typo")

    assert "'content-safety'" in str(error.value)
    assert "'llama-guard-typo' is not a model_name in model_list" in str(error.value)


# --- LiteLLM's callbacks shorthand -----------------------------------------------------------


async def test_callbacks_shorthand_takes_its_settings(
        gateway, model_list, guard_model, fake_upstream, tmp_path: Path):
    (tmp_path / "policy.txt").write_text(CUSTOM_CATEGORIES)
    guard_model.reply = "unsafe\nO1"
    client = await gateway({"model_list": model_list, "litellm_settings": {
        "callbacks": ["llamaguard_moderations"],
        "llamaguard_model_name": "llama-guard",
        "llamaguard_unsafe_content_categories": "policy.txt",
    }}, plugins=[("llamaguard", gatehouse_llamaguard)])

    resp = await chat(client, user("hello"))

    assert resp.status == 400
    assert await resp.json() == blocked_body(["O1"], ["Violence and Hate"])
    assert applied(resp) == ["llamaguard_moderations", "llamaguard_moderations"]
    assert CUSTOM_CATEGORIES.strip() in prompt_parts(guard_model)[0]


async def test_replay_bounds_its_checks_as_vendor_calls(gateway, model_list, guard_model,
                                                        monkeypatch):
    # Each check is a call to the Llama Guard deployment: `gatehouse replay --rate` must space
    # them like any vendor's.
    from gatehouse.app import GATEWAY
    from gatehouse.guardrails.replay import Filters, Pacer, replay

    MASTER = "sk-llamaguard-replay-0123456789"

    client = await gateway({
        "model_list": model_list,
        "general_settings": {"master_key": MASTER, "store_prompts_in_spend_logs": True},
        "guardrails": [{"guardrail_name": "content-safety", "params": {
            "guardrail": "llamaguard", "mode": "pre_call", "default_on": True,
            "llamaguard_model_name": "llama-guard"}}]},
        plugins=[("llamaguard", gatehouse_llamaguard)])
    for text in ("hello", "how are you"):
        resp = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {MASTER}"},
                                 json={"model": "gpt-4o", "messages": [user(text)]})
        assert resp.status == 200
    served = client.app[GATEWAY]
    await served.call_log.drain()
    await served.accounting.flush()
    asked = len(guard_model.received)

    paced = []

    async def wait(self):
        paced.append(self)

    monkeypatch.setattr(Pacer, "wait", wait)
    report = await replay(served.guardrails, served.store, Filters(since=0))
    assert report.tallies[0].checked == 2
    assert len(guard_model.received) - asked == len(paced) == 2
