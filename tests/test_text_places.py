"""Every place text travels to the upstream is a place guardrails read, through real HTTP."""

import pytest

from gatehouse.access.prices import usage

from doubles import PLUGINS, guardrail

WORD = "forbidden"


def _tool(description="a tool", param_description="a query"):
    return {"type": "function", "function": {
        "name": "lookup", "description": description, "parameters": {
            "type": "object", "properties": {"q": {"type": "string",
                                                   "description": param_description}}}}}


def _chat(*messages, **extra):
    return {"model": "gpt-4o", "messages": [*messages, {"role": "user", "content": "hi"}],
            **extra}


def _arguments(raw):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": raw}}]}


PLACES = {
    "message name": _chat({"role": "user", "content": "hi", "name": WORD}),
    "tool description": _chat(tools=[_tool(description=f"a {WORD} tool")]),
    "tool parameter description": _chat(tools=[_tool(param_description=WORD)]),
    "functions": _chat(functions=[_tool(description=WORD)["function"]]),
    "legacy function_call arguments": _chat({"role": "assistant", "content": None,
                                             "function_call": {"name": "lookup",
                                                               "arguments": f'{{"q":"{WORD}"}}'}}),
    "response_format schema": _chat(response_format={"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object", "properties": {
            "a": {"type": "string", "description": f"say {WORD}"}}}}}),
    "prediction": _chat(prediction={"type": "content", "content": f"a {WORD} draft"}),
    "prediction parts": _chat(prediction={"type": "content", "content": [
        {"type": "text", "text": WORD}]}),
    "refusal part": _chat({"role": "assistant", "content": [
        {"type": "refusal", "refusal": f"no {WORD}"}]}),
    "refusal": _chat({"role": "assistant", "content": None, "refusal": WORD}),
    "input_text part": _chat({"role": "user", "content": [
        {"type": "input_text", "text": WORD}]}),
    "user": _chat(user=WORD),
    "escaped tool arguments": _chat(_arguments('{"q": "forbidd\\u0065n"}')),
}


@pytest.mark.parametrize("place", PLACES)
async def test_text_in_every_place_is_checked_before_the_upstream(gateway, fake_upstream,
                                                                   place):
    client = await gateway({"guardrails": [guardrail("g", block_word=WORD, default_on=True)]},
                           plugins=PLUGINS)
    resp = await client.post("/v1/chat/completions", json=PLACES[place])
    assert resp.status == 400, place
    assert fake_upstream.received == []


async def test_completions_suffix_is_checked(gateway, fake_upstream):
    client = await gateway({"guardrails": [guardrail("g", block_word=WORD, default_on=True)]},
                           plugins=PLUGINS)
    resp = await client.post("/v1/completions",
                             json={"model": "gpt-4o", "prompt": "def f():", "suffix": WORD})
    assert resp.status == 400
    assert fake_upstream.received == []



def test_a_spend_estimate_counts_what_the_model_reads_and_not_user():
    body = {"model": "gpt-4o", "user": "u" * 400, "tools": [_tool(description="d" * 40)],
            "messages": [{"role": "user", "content": "x" * 40}]}
    prompt, _ = usage(body, {"choices": []})
    assert prompt == usage({**body, "user": None}, {"choices": []})[0] > usage(
        {**body, "tools": None, "user": None}, {"choices": []})[0]


def test_the_latest_user_turn_is_the_last_user_messages_content():
    from gatehouse.guardrails.text import joined, last_user_group
    body = {"messages": [{"role": "user", "content": "first"},
                         {"role": "user", "name": "bob", "content": [
                             {"type": "text", "text": "sec"},
                             {"type": "image_url", "image_url": {"url": "x"}},
                             {"type": "text", "text": "ond"}]},
                         {"role": "assistant", "content": "reply"}]}
    assert joined(last_user_group(body)) == "second"
    assert joined(last_user_group({"prompt": ["a", "b"]})) == "b"
    assert last_user_group({"messages": [{"role": "system", "content": "x"}]}) == []
