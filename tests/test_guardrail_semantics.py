"""Guardrail modes, order, selection rules, blocks and failures, through real HTTP."""

import asyncio
import logging

import orjson
import pytest

from doubles import EVENTS, NEW_TEXTS, PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY

APPLIED = "x-gatehouse-applied-guardrails"


async def start(gateway, *guardrails, **config):
    return await gateway({"guardrails": list(guardrails), **config}, plugins=PLUGINS)


def sse_events(text: str) -> list:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def streamed_content(events: list) -> str:
    out = ""
    for event in events:
        if event == "[DONE]":
            continue
        for choice in orjson.loads(event).get("choices", []):
            out += choice.get("delta", {}).get("content") or ""
    return out


async def test_pre_call_runs_in_config_order_and_rewrites_reach_upstream(
        gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("first", append=" +1", default_on=True),
                         guardrail("second", append=" +2", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hi"))
    assert resp.status == 200
    assert EVENTS == [("first", "pre_call"), ("second", "pre_call")]
    assert fake_upstream.last["messages"][0]["content"] == "hi +1 +2"
    assert resp.headers[APPLIED] == "first,second"
    assert resp.headers["x-litellm-applied-guardrails"] == "first,second"


async def test_block_returns_reference_error_body_and_upstream_is_not_called(
        gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("guard", block_word="secret", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("a secret plan"))
    assert resp.status == 400
    assert await resp.json() == {"error": {
        "message": 'Probe guard saw secret: {"probe_response":{"word":"secret"}}',
        "details": {"error": "Probe guard saw secret", "probe_response": {"word": "secret"}},
        "type": "guardrail_violation", "param": None, "code": "400"}}
    assert fake_upstream.received == []
    assert resp.headers[APPLIED] == "guard"


async def test_a_block_stops_later_guardrails(gateway, chat):
    client = await start(gateway, guardrail("a", block_word="x", default_on=True),
                         guardrail("b", default_on=True))
    await client.post("/v1/chat/completions", json=chat("x"))
    assert EVENTS == [("a", "pre_call")]


async def test_no_header_when_nothing_ran(gateway, chat):
    client = await start(gateway, guardrail("optional"))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 200
    assert APPLIED not in resp.headers
    assert "x-litellm-applied-guardrails" not in resp.headers
    assert EVENTS == []


@pytest.mark.parametrize("requested", [["picked"], {"picked": {}},
                                       {"picked": {"extra_body": {}}}])
async def test_request_selects_guardrails_by_list_or_dict(gateway, chat, requested):
    client = await start(gateway, guardrail("picked"), guardrail("other"))
    resp = await client.post("/v1/chat/completions", json=chat(guardrails=requested))
    assert resp.status == 200
    assert resp.headers[APPLIED] == "picked"
    assert EVENTS == [("picked", "pre_call")]


async def test_default_on_runs_even_when_request_names_others_or_none(gateway, chat):
    client = await start(gateway, guardrail("always", default_on=True), guardrail("picked"))
    resp = await client.post("/v1/chat/completions", json=chat(guardrails=["picked"]))
    assert resp.headers[APPLIED] == "always,picked"
    EVENTS.clear()
    resp = await client.post("/v1/chat/completions", json=chat(guardrails=[]))
    assert resp.headers[APPLIED] == "always"
    assert EVENTS == [("always", "pre_call")]


async def test_extra_body_reaches_only_its_guardrail(gateway, chat):
    client = await start(gateway, guardrail("a"), guardrail("b"))
    resp = await client.post("/v1/chat/completions", json=chat(guardrails={
        "a": {"extra_body": {"success_threshold": 0.9}}, "b": {}}))
    assert resp.status == 200
    assert EVENTS == [("a", "pre_call"), ("a", "extra_body=[('success_threshold', 0.9)]"),
                      ("b", "pre_call")]


async def test_gateway_fields_are_not_sent_upstream(gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("a"))
    await client.post("/v1/chat/completions", json=chat(
        guardrails=["a"], metadata={"tags": ["x"]}, user="u1"))
    sent = fake_upstream.last
    assert "guardrails" not in sent and "metadata" not in sent
    assert sent["user"] == "u1"


@pytest.mark.parametrize("requested", [["nope"], {"nope": {}}])
async def test_unknown_guardrail_in_request_is_400_naming_it(gateway, fake_upstream, chat,
                                                             requested):
    client = await start(gateway, guardrail("known"))
    resp = await client.post("/v1/chat/completions", json=chat(guardrails=requested))
    assert resp.status == 400
    body = await resp.json()
    assert "nope" in body["error"]["message"]
    assert body["error"]["param"] == "guardrails"
    assert fake_upstream.received == []


@pytest.mark.parametrize("requested", ["known", [1], {"known": {"extra_body": "x"}}])
async def test_malformed_guardrails_field_is_400(gateway, chat, requested):
    client = await start(gateway, guardrail("known"))
    resp = await client.post("/v1/chat/completions", json=chat(guardrails=requested))
    assert resp.status == 400
    assert (await resp.json())["error"]["param"] == "guardrails"


async def test_during_call_runs_concurrently_with_upstream(gateway, fake_upstream, chat):
    # The guardrail can only finish once the upstream has the request, and the upstream only
    # answers once the guardrail started: run one after the other, this would deadlock.
    upstream_has_request = asyncio.Event()

    async def upstream_waits_for_guardrail(body):
        upstream_has_request.set()
        EVENTS.append(("upstream", "received"))
        while ("watch", "during_call:start") not in EVENTS:
            await asyncio.sleep(0.001)

    fake_upstream.before_reply = upstream_waits_for_guardrail
    client = await start(gateway, guardrail("watch", mode="during_call", default_on=True,
                                            wait_for=upstream_has_request))
    resp = await asyncio.wait_for(client.post("/v1/chat/completions", json=chat()), 10)
    assert resp.status == 200
    assert EVENTS.index(("watch", "during_call:start")) < EVENTS.index(
        ("watch", "during_call:end"))
    assert ("upstream", "received") in EVENTS
    assert resp.headers[APPLIED] == "watch"


async def test_reply_waits_for_during_call_and_a_block_discards_it(gateway, fake_upstream,
                                                                   chat):
    client = await start(gateway, guardrail("watch", mode="during_call", default_on=True,
                                            block_word="bad"))
    resp = await client.post("/v1/chat/completions", json=chat("bad words"))
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["details"]["error"] == "Probe watch saw bad"
    assert "Hello" not in await resp.text()


async def test_post_call_rewrites_the_reply(gateway, fake_upstream, chat):
    fake_upstream.reply = "the answer"
    client = await start(gateway, guardrail("post", mode="post_call", append="!",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "the answer!"
    assert EVENTS == [("post", "post_call")]


async def test_post_call_block_replaces_reply(gateway, fake_upstream, chat):
    fake_upstream.reply = "leaked password"
    client = await start(gateway, guardrail("post", mode="post_call", block_word="password",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 400
    assert "leaked" not in await resp.text()


async def test_mode_list_runs_each_mode(gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("both", mode=["pre_call", "post_call"],
                                            default_on=True))
    await client.post("/v1/chat/completions", json=chat())
    assert EVENTS == [("both", "pre_call"), ("both", "post_call")]


async def test_modes_not_configured_do_not_run(gateway, chat):
    client = await start(gateway, guardrail("pre_only", mode="pre_call", default_on=True))
    await client.post("/v1/chat/completions", json=chat())
    assert EVENTS == [("pre_only", "pre_call")]


async def test_logging_only_masks_the_log_record_not_the_call(gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("mask", mode="logging_only", mask="4111",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("card 4111 1111"))
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    assert fake_upstream.last["messages"][0]["content"] == "card 4111 1111"
    [record] = RECORDS
    assert record["outcome"] == "success"
    assert record["request"]["messages"][0]["content"] == "card **** 1111"
    assert record["guardrails"] == ["mask"]
    assert EVENTS == [("mask", "logging_only")]


async def test_on_failure_gets_the_error_the_client_saw(gateway, chat):
    client = await start(gateway, guardrail("guard", block_word="no", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("no"))
    await client.app[GATEWAY].call_log.drain()
    [record] = RECORDS
    assert record["outcome"] == "failure"
    assert record["error"] == {"status": 400, "body": await resp.json()}
    assert record["guardrails"] == ["guard"]


async def test_on_success_record_holds_request_reply_and_guardrails(gateway, fake_upstream,
                                                                    chat):
    fake_upstream.reply = "fine"
    client = await start(gateway, guardrail("a", default_on=True))
    await client.post("/v1/chat/completions", json=chat("q", user="alice"))
    await client.app[GATEWAY].call_log.drain()
    [record] = RECORDS
    assert record["response"]["choices"][0]["message"]["content"] == "fine"
    assert record["user"] == "alice"
    assert record["guardrails"] == ["a"]
    assert record["model"] == "gpt-4o"


@pytest.mark.parametrize("fail,status", [("crash", 502), ("stall", 504)])
async def test_fail_closed_refuses_the_call_naming_the_guardrail(gateway, fake_upstream, chat,
                                                                 fail, status, caplog):
    client = await start(gateway, guardrail("flaky", fail=fail, timeout=0.2,
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == status
    body = await resp.json()
    assert "flaky" in body["error"]["message"]
    assert body["error"]["type"] == "guardrail_error"
    assert "Traceback" not in await resp.text()
    assert fake_upstream.received == []


async def test_fail_open_lets_the_call_through_a_stalled_guardrail(gateway, fake_upstream,
                                                                    chat, caplog):
    caplog.set_level(logging.WARNING, "gatehouse")
    client = await start(gateway, guardrail("flaky", fail="stall", timeout=0.2,
                                            on_error="fail_open", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 200
    assert len(fake_upstream.received) == 1
    assert "flaky" in caplog.text and "failed open" in caplog.text
    assert APPLIED not in resp.headers


async def test_a_crash_fails_closed_even_when_the_guardrail_may_fail_open(gateway,
                                                                         fake_upstream, chat):
    # A crash may be provoked by the request; failing open would let the client switch the
    # guardrail off.
    client = await start(gateway, guardrail("flaky", fail="crash", on_error="fail_open",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 502
    assert (await resp.json())["error"]["type"] == "guardrail_error"
    assert fake_upstream.received == []


async def test_guardrails_list_shows_params_and_info_and_never_a_key(gateway):
    info = {"params": [{"name": "toxicity_score", "type": "float"}]}
    client = await start(gateway,
                         {**guardrail("a", api_key="sk-very-secret-key", block_word="x",
                                      access_token="tok-0123456789abcdef"),
                          "guardrail_info": info},
                         guardrail("b"))
    for path in ("/guardrails/list", "/v1/guardrails/list"):
        resp = await client.get(path)
        assert await resp.json() == {"guardrails": [
            {"guardrail_name": "a", "guardrail_info": info, "litellm_params": {
                "guardrail": "probe", "mode": ["pre_call"], "default_on": False,
                "api_key": "sk-v****", "block_word": "x", "access_token": "tok-****"}},
            {"guardrail_name": "b", "guardrail_info": None, "litellm_params": {
                "guardrail": "probe", "mode": ["pre_call"], "default_on": False}}]}
        assert "secret-key" not in await resp.text()
        assert "0123456789abcdef" not in await resp.text()


# --- streams ---------------------------------------------------------------------------------


async def test_stream_passes_chunks_and_checks_each(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["Hel", "lo ", "there"]
    client = await start(gateway, guardrail("s", mode="post_call", type_="stream_probe",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert resp.headers[APPLIED] == "s"
    assert streamed_content(events) == "Hello there"
    assert events[-1] == "[DONE]"
    assert EVENTS.count(("s", "post_call_stream")) == 4  # three pieces and the finish chunk
    assert EVENTS[-1] == ("s", "post_call_stream:done")


async def test_a_stream_hook_is_handed_each_chunks_new_text_alone(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["Hel", "lo"]
    fake_upstream.more_choices = [["a", "b"]]
    client = await start(gateway, guardrail("n", mode="post_call", type_="new_texts",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True, n=2))
    assert streamed_content(sse_events(await resp.text())) == "Helalob"
    # One chunk per choice, interleaved; then each choice's finish chunk, then the done call.
    assert NEW_TEXTS == [(False, {(0, None): "Hel"}), (False, {(1, None): "a"}),
                         (False, {(0, None): "lo"}), (False, {(1, None): "b"}),
                         (False, {}), (False, {}), (True, {})]


async def test_a_stream_hook_is_handed_tool_call_arguments_piece_by_piece(
        gateway, fake_upstream, chat):
    fake_upstream.tool_calls = [("lookup", ['{"q": ', '"x"}'])]
    client = await start(gateway, guardrail("n", mode="post_call", type_="new_texts",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert resp.status == 200
    await resp.read()
    assert [texts for _, texts in NEW_TEXTS if texts] == [{(0, 0): '{"q": '}, {(0, 0): '"x"}'}]
    assert NEW_TEXTS[-1] == (True, {})


async def test_a_stream_hook_is_handed_a_whole_reply_as_new_text_then_nothing(
        gateway, fake_upstream, chat):
    fake_upstream.reply = "the whole answer"
    client = await start(gateway, guardrail("n", mode="post_call", type_="new_texts",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 200
    assert NEW_TEXTS == [(False, {(0, None): "the whole answer"}), (True, {})]


@pytest.mark.parametrize("refuses", [False, True], ids=["content", "refusal"])
async def test_a_stream_only_guardrail_checks_whole_replies_as_one_chunk(
        gateway, fake_upstream, chat, refuses):
    fake_upstream.refuses = refuses
    fake_upstream.reply = "the forbidden answer"
    client = await start(gateway, guardrail("c", mode="post_call", type_="chunk_only",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["error"] == "Probe c saw forbidden"
    assert EVENTS == [("c", "post_call_stream")]


async def test_a_stream_only_guardrail_checks_tool_call_arguments_of_a_whole_reply(
        gateway, fake_upstream, chat):
    fake_upstream.tool_calls = [("lookup", ['{"q": "the ', 'forbidden thing"}'])]
    client = await start(gateway, guardrail("c", mode="post_call", type_="chunk_only",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(n=2))
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["error"] == "Probe c saw forbidden"


async def test_a_stream_only_guardrail_rewrites_a_whole_reply(gateway, fake_upstream, chat):
    fake_upstream.reply = "my pin is 4321, remember 4321"
    client = await start(gateway, guardrail("c", mode="post_call", type_="chunk_only",
                                            mask="4321", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat())
    assert resp.status == 200
    assert resp.headers[APPLIED] == "c"
    assert (await resp.json())["choices"][0]["message"]["content"] == (
        "my pin is ****, remember ****")
    assert EVENTS == [("c", "post_call_stream"), ("c", "post_call_stream:done")]


async def test_block_mid_stream_ends_with_error_event_and_no_more_content(
        gateway, fake_upstream, chat):
    fake_upstream.chunks = ["fine so far, ", "then the for", "bidden word", " and more"]
    client = await start(gateway, guardrail("s", mode="post_call", type_="stream_probe",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    assert resp.status == 200
    events = sse_events(await resp.text())
    error = orjson.loads(events[-1])
    assert error["error"]["details"]["error"] == "Probe s saw forbidden"
    content = streamed_content(events[:-1])
    # The hold-back kept the first half of the split word from the client.
    assert "for" not in content.replace("fine so far, ", "")
    assert "bidden" not in content and "more" not in content
    assert "[DONE]" not in events


async def test_post_call_only_guardrail_sees_assembled_stream(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["a ", "leaked ", "password"]
    client = await start(gateway, guardrail("p", mode="post_call", block_word="password",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert "leaked" not in await resp.text()
    assert orjson.loads(events[-1])["error"]["details"]["error"] == "Probe p saw password"


async def test_post_call_only_guardrail_rewrites_assembled_stream(gateway, fake_upstream,
                                                                  chat):
    fake_upstream.chunks = ["one ", "two"]
    client = await start(gateway, guardrail("p", mode="post_call", append=" [ok]",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert streamed_content(events) == "one two [ok]"
    assert events[-1] == "[DONE]"
    finishes = [c["finish_reason"] for e in events[:-1] for c in orjson.loads(e)["choices"]]
    assert finishes[-1] == "stop"


async def test_a_streamed_refusal_is_held_back_and_checked_whole_and_sent_as_one(
        gateway, fake_upstream, chat):
    fake_upstream.refuses = True
    fake_upstream.chunks = ["no, ", "not the ", "password"]
    client = await start(gateway, guardrail("p", mode="post_call", block_word="password",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    text = await resp.text()
    assert "not the" not in text  # held back until the assembled reply passed
    assert orjson.loads(sse_events(text)[-1])["error"]["details"]["error"] == (
        "Probe p saw password")

    fake_upstream.chunks = ["no, ", "sorry"]
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert events[-1] == "[DONE]"
    assert "".join(c["delta"].get("refusal") or "" for e in events[:-1]
                   for c in orjson.loads(e)["choices"]) == "no, sorry"
    assert streamed_content(events) == ""


async def test_a_post_call_guardrail_reads_streamed_tool_arguments_unescaped(
        gateway, fake_upstream, chat):
    fake_upstream.tool_calls = [("lookup", ['{"q": "competitor', '\\u002', 'dx"}'])]
    client = await start(gateway, guardrail("p", mode="post_call", block_word="competitor-x",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert orjson.loads(events[-1])["error"]["details"]["error"] == "Probe p saw competitor-x"
    assert "competitor" not in "".join(events[:-1])


async def test_pre_call_block_on_stream_is_plain_json(gateway, fake_upstream, chat):
    client = await start(gateway, guardrail("g", block_word="bad", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("bad", stream=True))
    assert resp.status == 400
    assert resp.content_type == "application/json"


async def test_stream_record_reaches_callbacks(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["x", "y"]
    client = await start(gateway, guardrail("a", default_on=True))
    await (await client.post("/v1/chat/completions", json=chat(stream=True))).read()
    await client.app[GATEWAY].call_log.drain()
    [record] = RECORDS
    assert record["response"]["choices"][0]["message"]["content"] == "xy"
    assert record["stream"] is True


async def test_post_call_rewrites_a_mock_response_too(gateway, chat):
    client = await start(gateway, guardrail("post", mode="post_call", append="!",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(mock_response="canned"))
    assert (await resp.json())["choices"][0]["message"]["content"] == "canned!"


def streamed_texts(events: list) -> dict:
    """What the client was sent of each text, by (choice index, tool-call index or None)."""
    out: dict = {}
    for event in events:
        if event == "[DONE]" or "error" in orjson.loads(event):
            continue
        for choice in orjson.loads(event)["choices"]:
            delta = choice.get("delta", {})
            key = (choice["index"], None)
            out[key] = out.get(key, "") + (delta.get("content") or "")
            for call in delta.get("tool_calls") or ():
                key = (choice["index"], call["index"])
                out[key] = out.get(key, "") + call["function"].get("arguments", "")
    return out


async def test_every_choice_of_a_stream_is_held_back_and_checked(gateway, fake_upstream, chat):
    fake_upstream.chunks = ["all ", "fine ", "here ", "and ", "more"]
    fake_upstream.more_choices = [["fine so far, ", "then the for", "bidden word", " and more"]]
    client = await start(gateway, guardrail("s", mode="post_call", type_="stream_probe",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True, n=2))
    events = sse_events(await resp.text())
    assert orjson.loads(events[-1])["error"]["details"]["error"] == "Probe s saw forbidden"
    sent = streamed_texts(events)
    assert "for" not in sent.get((1, None), "").replace("fine so far, ", "")


async def test_streamed_tool_call_arguments_are_held_back_and_checked(gateway, fake_upstream,
                                                                      chat):
    fake_upstream.tool_calls = [("lookup", ['{"q": "the for', 'bidden', ' thing"}'])]
    client = await start(gateway, guardrail("s", mode="post_call", type_="stream_probe",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True))
    events = sse_events(await resp.text())
    assert orjson.loads(events[-1])["error"]["details"]["error"] == "Probe s saw forbidden"
    assert "for" not in streamed_texts(events).get((0, 0), "")


async def test_a_clean_stream_of_choices_and_tool_calls_arrives_whole(gateway, fake_upstream,
                                                                      chat):
    fake_upstream.tool_calls = [("lookup", ['{"q": ', '"cats"}']), ("fetch", ['{}'])]
    client = await start(gateway, guardrail("s", mode="post_call", type_="stream_probe",
                                            block_word="forbidden", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True, n=2))
    events = sse_events(await resp.text())
    assert events[-1] == "[DONE]"
    sent = streamed_texts(events)
    for index in (0, 1):
        assert sent[(index, 0)] == '{"q": "cats"}' and sent[(index, 1)] == "{}"
    heads = [call for e in events[:-1] for c in orjson.loads(e)["choices"]
             for call in c["delta"].get("tool_calls") or () if "id" in call]
    assert [(h["id"], h["function"]["name"]) for h in heads] == [
        ("call_0", "lookup"), ("call_0", "lookup"), ("call_1", "fetch"), ("call_1", "fetch")]


async def test_post_call_only_guardrail_sees_every_choice_of_a_stream(gateway, fake_upstream,
                                                                      chat):
    fake_upstream.chunks = ["all ", "fine"]
    fake_upstream.more_choices = [["a ", "leaked ", "password"]]
    client = await start(gateway, guardrail("p", mode="post_call", block_word="password",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True, n=2))
    text = await resp.text()
    assert "leaked" not in text
    assert orjson.loads(sse_events(text)[-1])["error"]["details"]["error"] == (
        "Probe p saw password")


async def test_post_call_only_guardrail_rewrites_every_streamed_choice(gateway, fake_upstream,
                                                                       chat):
    fake_upstream.chunks = ["one ", "two"]
    fake_upstream.more_choices = [["three"]]
    client = await start(gateway, guardrail("p", mode="post_call", append=" [ok]",
                                            default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat(stream=True, n=2))
    events = sse_events(await resp.text())
    assert events[-1] == "[DONE]"
    assert streamed_texts(events) == {(0, None): "one two [ok]", (1, None): "three [ok]"}


@pytest.mark.parametrize("mode", ["pre_call", "during_call"])
async def test_a_guardrail_may_answer_the_call_itself(gateway, fake_upstream, chat, mode):
    fake_upstream.reply = "the upstream's reply"
    client = await start(gateway, guardrail("helpful", mode=mode, block_word="refund",
                                            answer="Please contact support.",
                                            default_on=True),
                         guardrail("post", mode="post_call", append="!", default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("I want a refund"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["model"] == "probe-answer"
    # Reply checks still see (and may rewrite) what the client is given.
    assert body["choices"][0]["message"]["content"] == "Please contact support.!"
    assert "upstream's reply" not in await resp.text()
    if mode == "pre_call":
        assert fake_upstream.received == []
    # No model ran: nothing is charged.
    assert body["usage"]["total_tokens"] == 0
    resp = await client.post("/v1/chat/completions", json=chat("I want a refund", stream=True))
    events = sse_events(await resp.text())
    assert events[-1] == "[DONE]"
    assert streamed_content(events) == "Please contact support.!"
