"""The guardrail in a running gateway, seen from the client and from the upstream."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import gatehouse_banned_keywords
import orjson
import pytest
from aiohttp import web
from gatehouse.app import create_app
from gatehouse.config import ConfigError, config_from_dict

PLUGIN = [("banned_keywords", gatehouse_banned_keywords)]
BLOCKED_HELLO = {"error": {"message": "Keyword banned. Keyword=hello",
                           "details": {"error": "Keyword banned. Keyword=hello"},
                           "type": "guardrail_violation", "param": None, "code": "400"}}


def guardrail_config(mode: str | list[str], keywords: Any = ("hello",), **params: Any
                     ) -> dict[str, Any]:
    return {"guardrails": [{"guardrail_name": "no-greetings", "params": {
        "guardrail": "banned_keywords", "mode": mode, "default_on": True,
        "banned_keywords_list": list(keywords) if not isinstance(keywords, str) else keywords,
        **params}}]}


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


async def sse_events(resp: Any) -> list[Any]:
    """The stream's events in order, ``[DONE]`` included as that string."""
    events = []
    for line in (await resp.text()).split("\n"):
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else orjson.loads(data))
    return events


def streamed_content(events: list[Any]) -> str:
    return "".join(choice.get("delta", {}).get("content") or choice.get("text") or ""
                   for event in events if isinstance(event, dict)
                   for choice in event.get("choices", ()))


async def test_a_request_with_a_keyword_is_refused_before_the_upstream(gateway, fake_upstream):
    client = await gateway(guardrail_config("pre_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Hello world!"))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO
    assert resp.headers["x-gatehouse-applied-guardrails"] == "no-greetings"
    assert fake_upstream.received == []


async def test_a_clean_request_passes_and_names_the_guardrail(gateway, fake_upstream):
    fake_upstream.reply = "Shell out, hellos all round."
    client = await gateway(guardrail_config(["pre_call", "post_call"]), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Othello is a play."))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    assert resp.headers["x-gatehouse-applied-guardrails"] == "no-greetings"
    assert resp.headers["x-litellm-applied-guardrails"] == "no-greetings"
    assert fake_upstream.last["messages"][0]["content"] == "Othello is a play."


async def test_every_message_and_content_part_is_checked(gateway, fake_upstream):
    client = await gateway(guardrail_config("pre_call"), plugins=PLUGIN)
    body = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "First part."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "Second part says HELLO."}]}]}
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO
    assert fake_upstream.received == []


async def test_a_reply_with_a_keyword_is_replaced_by_the_error(gateway, fake_upstream):
    fake_upstream.reply = "Well, hello there!"
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me."))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO
    assert len(fake_upstream.received) == 1


async def test_during_call_refuses_the_request_and_discards_the_reply(gateway, fake_upstream):
    client = await gateway(guardrail_config("during_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("hello?"))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO


async def test_a_keyword_split_across_stream_chunks_never_reaches_the_client(gateway,
                                                                             fake_upstream):
    fake_upstream.chunks = ["say hel", "lo world"]
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me.", stream=True))
    assert resp.status == 200
    assert resp.headers["x-gatehouse-applied-guardrails"] == "no-greetings"
    events = await sse_events(resp)
    assert events[-1] == BLOCKED_HELLO, "the stream must end with the error, nothing after it"
    assert "[DONE]" not in events
    sent = streamed_content(events[:-1])
    assert "say ".startswith(sent), f"sent {sent!r}: part of the keyword got out"


def sent_of(events: list[Any], index: int, tool: int | None = None) -> str:
    """What the client got of choice ``index``'s content, or of its tool call ``tool``."""
    out = ""
    for event in events:
        for choice in event.get("choices", ()) if isinstance(event, dict) else ():
            if choice["index"] != index:
                continue
            delta = choice.get("delta", {})
            if tool is None:
                out += delta.get("content") or ""
            out += "".join(call["function"].get("arguments", "")
                           for call in delta.get("tool_calls") or () if call["index"] == tool)
    return out


async def test_a_keyword_in_a_second_choice_never_reaches_the_client(gateway, fake_upstream):
    fake_upstream.chunks = ["all ", "fine ", "here"]
    fake_upstream.more_choices = [["say hel", "lo world"]]
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me.", stream=True, n=2))
    events = await sse_events(resp)
    assert events[-1] == BLOCKED_HELLO
    assert "say ".startswith(sent_of(events[:-1], 1)), "part of the keyword got out"


async def test_a_keyword_in_streamed_tool_arguments_never_reaches_the_client(gateway,
                                                                             fake_upstream):
    fake_upstream.tool_calls = [("say", ['{"words": "hel', 'lo world"}'])]
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me.", stream=True))
    events = await sse_events(resp)
    assert events[-1] == BLOCKED_HELLO
    assert "hel" not in sent_of(events[:-1], 0, tool=0)


async def test_a_word_that_only_begins_like_a_keyword_streams_through(gateway, fake_upstream):
    fake_upstream.chunks = ["say hel", "lo", "s to all"]
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me.", stream=True))
    events = await sse_events(resp)
    assert events[-1] == "[DONE]"
    assert streamed_content(events) == "say hellos to all"


async def test_a_clean_stream_passes_unchanged(gateway, fake_upstream):
    fake_upstream.reply = "Othello, shell and hellos are all fine words here."
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Say something.", stream=True))
    events = await sse_events(resp)
    assert events[-1] == "[DONE]"
    assert streamed_content(events) == fake_upstream.reply
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_a_stream_ending_on_a_keyword_is_refused(gateway, fake_upstream):
    fake_upstream.chunks = ["and then: ", "Hel", "lo"]
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Greet me.", stream=True))
    events = await sse_events(resp)
    assert events[-1] == {"error": {**BLOCKED_HELLO["error"]}}
    assert "hel" not in streamed_content(events).lower()


async def test_legacy_completions_prompt_is_checked(gateway, fake_upstream):
    client = await gateway(guardrail_config("pre_call"), plugins=PLUGIN)
    for prompt in ("Say hello", ["a fine prompt", "and HELLO"]):
        resp = await client.post("/v1/completions", json={"model": "gpt-4o", "prompt": prompt})
        assert resp.status == 400, prompt
        assert await resp.json() == BLOCKED_HELLO
    resp = await client.post("/v1/completions", json={"model": "gpt-4o", "prompt": "Say hi"})
    assert resp.status == 200
    assert [r["prompt"] for r in fake_upstream.received] == ["Say hi"]


async def test_embeddings_input_is_checked(gateway, fake_upstream):
    client = await gateway(guardrail_config("pre_call"), plugins=PLUGIN)
    for text in ("hello", ["fine", "Hello again"]):
        resp = await client.post("/v1/embeddings", json={"model": "gpt-4o", "input": text})
        assert resp.status == 400, text
        assert await resp.json() == BLOCKED_HELLO
    assert fake_upstream.received == []


async def test_substring_mode_blocks_inside_words(gateway, fake_upstream):
    client = await gateway(guardrail_config("pre_call", match="substring"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Othello"))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO


async def test_the_litellm_callbacks_shorthand_checks_requests_and_replies(gateway,
                                                                          fake_upstream):
    config = {"litellm_settings": {"callbacks": ["banned_keywords"],
                                   "banned_keywords_list": ["hello"]}}
    client = await gateway(config, plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Hello world!"))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO
    assert resp.headers["x-gatehouse-applied-guardrails"] == "banned_keywords"
    assert fake_upstream.received == []
    fake_upstream.reply = "hello from the model"
    resp = await client.post("/v1/chat/completions", json=chat("Greet me."))
    assert resp.status == 400
    assert await resp.json() == BLOCKED_HELLO


async def test_keywords_from_a_file_beside_the_config(gateway, fake_upstream, tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "banned.txt").write_text(
        "# greetings we do not allow\n\n  hello  \n#goodbye\nProject Falcon\n", encoding="utf-8")
    config = guardrail_config("pre_call", keywords="lists/banned.txt")
    client = await gateway(config, plugins=PLUGIN, base_dir=tmp_path)
    for text, status in (("the project falcon plan", 400), ("goodbye", 200),
                         ("#goodbye", 200), ("hello", 400)):
        resp = await client.post("/v1/chat/completions", json=chat(text))
        assert resp.status == status, text
    resp = await client.post("/v1/chat/completions", json=chat("Project  Falcon? PROJECT FALCON!"))
    assert (await resp.json())["error"]["details"]["error"] == \
        "Keyword banned. Keyword=Project Falcon"


def start_up(config: dict[str, Any], base_dir: Path) -> None:
    create_app(config_from_dict(config, base_dir=base_dir), extra_plugins=PLUGIN, load=())


def test_a_missing_keyword_file_stops_the_start_naming_it(tmp_path):
    with pytest.raises(ConfigError) as error:
        start_up(guardrail_config("pre_call", keywords="missing.txt"), tmp_path)
    message = str(error.value)
    assert "guardrails[0].params.banned_keywords_list" in message
    assert f"keyword file not found: {tmp_path / 'missing.txt'}" in message


@pytest.mark.parametrize(("keywords", "complaint"), [
    ([], "lists no keywords"),
    (["  ", ""], "lists no keywords"),
    ("only-comments.txt", "lists no keywords"),
    (None, "Input should be a valid list"),
])
def test_a_list_that_can_never_block_is_refused_at_start(tmp_path, keywords, complaint):
    (tmp_path / "only-comments.txt").write_text("# nothing yet\n\n", encoding="utf-8")
    config = guardrail_config("pre_call", keywords="unused")
    config["guardrails"][0]["params"]["banned_keywords_list"] = keywords
    with pytest.raises(ConfigError, match=complaint):
        start_up(config, tmp_path)


def test_an_unknown_match_kind_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="params.match"):
        start_up(guardrail_config("pre_call", match="fuzzy"), tmp_path)


@pytest.mark.parametrize("message", [
    {"role": "user", "content": [{"type": "text", "text": "well, hel"},
                                 {"type": "text", "text": "lo there"}]},
    {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "say", "arguments": '{"words": "h\\u0065llo"}'}}]},
], ids=["split across text parts", "json-escaped arguments"])
async def test_a_keyword_is_found_as_the_model_reads_it(gateway, fake_upstream, message):
    client = await gateway(guardrail_config("pre_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [message, {"role": "user", "content": "go on"}]})
    assert await resp.json() == BLOCKED_HELLO
    assert fake_upstream.received == []


EVASIONS = {
    "lookalike letters": ("hello", "say h\u0435ll\u043e there"),  # Cyrillic ie and o
    "combining accents": ("hello", "say he\u0301llo\u0308 there"),
    "other dashes": ("competitor-x", "ask competitor\u2014x now"),
    "newline in a phrase": ("project falcon", "about project\nfalcon today"),
    "tab in a phrase": ("project falcon", "about project\tfalcon today"),
    "double space in a phrase": ("project falcon", "about project  falcon today"),
}
KEYWORDS = ["hello", "competitor-x", "project falcon"]


def blocked(keyword: str) -> dict[str, Any]:
    message = f"Keyword banned. Keyword={keyword}"
    return {"error": {"message": message, "details": {"error": message},
                      "type": "guardrail_violation", "param": None, "code": "400"}}


@pytest.mark.parametrize("evasion", EVASIONS)
async def test_a_respelt_keyword_in_a_request_is_refused(gateway, fake_upstream, evasion):
    keyword, text = EVASIONS[evasion]
    client = await gateway(guardrail_config("pre_call", KEYWORDS), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat(text))
    assert resp.status == 400
    assert await resp.json() == blocked(keyword)
    assert fake_upstream.received == []


@pytest.mark.parametrize("evasion", EVASIONS)
async def test_a_respelt_keyword_in_a_stream_is_refused(gateway, fake_upstream, evasion):
    keyword, text = EVASIONS[evasion]
    fake_upstream.chunks = [text[i:i + 2] for i in range(0, len(text), 2)]
    client = await gateway(guardrail_config("post_call", KEYWORDS), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Go on.", stream=True))
    events = await sse_events(resp)
    assert events[-1] == blocked(keyword)
    sent = streamed_content(events[:-1])
    assert text.startswith(sent) and len(sent) <= text.index(keyword[0]), f"sent {sent!r}"


async def test_ordinary_accents_and_dashes_pass(gateway, fake_upstream):
    fake_upstream.reply = "Her naïve fiancée's résumé — 1990–2000, project-falcon, hellos."
    client = await gateway(guardrail_config(["pre_call", "post_call"], KEYWORDS),
                           plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Café — crème brûlée?"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply


class PausingUpstream:
    """Streams ``pieces``, then waits for ``resume`` before the last piece, so a test can act
    while the gateway still has the first part to get through and the stream is open."""

    def __init__(self, pieces: list[str], last: str):
        self.pieces, self.last = pieces, last
        self.paused, self.resume = asyncio.Event(), asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.stream)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)

        async def send(content: str | None, finish: str | None = None) -> None:
            delta = {} if content is None else {"content": content}
            chunk = {"id": "chatcmpl-paused", "object": "chat.completion.chunk",
                     "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        for piece in self.pieces:
            await send(piece)
        self.paused.set()
        await asyncio.wait_for(self.resume.wait(), 60)
        await send(self.last)
        await send(None, "stop")
        await response.write(b"data: [DONE]\n\n")
        return response


async def test_other_calls_are_served_while_a_long_adversarial_reply_streams(
        gateway, fake_upstream, aiohttp_server):
    # Zero-width spaces and combining marks fold to nothing: the scan that re-read them on
    # every chunk held the event loop for minutes on a reply like this one.
    upstream = PausingUpstream(["\u200b\u200b\u0301"] * 8_000, "done.")
    served = await aiohttp_server(upstream.app)
    fake_upstream.reply = "A short answer."
    config = {**guardrail_config(["pre_call", "post_call"], KEYWORDS), "model_list": [
        fake_upstream.model_entry("gpt-4o"),
        {"model_name": "long", "params": {"model": "openai/long", "api_key": "sk-fake",
                                          "api_base": str(served.make_url("/v1"))}}]}
    client = await gateway(config, plugins=PLUGIN)
    events: list[str] = []
    stream = await client.post("/v1/chat/completions",
                               json={**chat("Go on.", stream=True), "model": "long"})
    assert stream.status == 200
    await asyncio.wait_for(upstream.paused.wait(), 30)
    events.append("upstream paused mid-stream")
    try:
        health = await asyncio.wait_for(client.get("/health/liveliness"), 30)
        assert health.status == 200
        events.append("health answered")
        reply = await asyncio.wait_for(client.post("/v1/chat/completions", json=chat("Hi.")), 30)
        assert (await reply.json())["choices"][0]["message"]["content"] == "A short answer."
        events.append("chat answered")
    finally:
        upstream.resume.set()
    rest = await asyncio.wait_for(stream.text(), 30)
    events.append("stream ended")
    assert events == ["upstream paused mid-stream", "health answered", "chat answered",
                      "stream ended"]
    assert rest.rstrip().endswith("data: [DONE]")
    assert "done." in rest



def streamed_refusal(events: list[Any]) -> str:
    return "".join(choice.get("delta", {}).get("refusal") or ""
                   for event in events if isinstance(event, dict)
                   for choice in event.get("choices", ()))


async def test_a_streamed_refusal_is_checked_and_held_back_and_stays_a_refusal(
        gateway, fake_upstream):
    fake_upstream.refuses = True
    client = await gateway(guardrail_config("post_call"), plugins=PLUGIN)
    for pieces, last in ((["I won't say hel", "lo to ", "anyone."], BLOCKED_HELLO),
                         (["I can't ", "help with ", "that."], "[DONE]")):
        fake_upstream.chunks = pieces
        resp = await client.post("/v1/chat/completions", json=chat("Go on.", stream=True))
        events = await sse_events(resp)
        assert events[-1] == last
        sent = streamed_refusal(events[:-1])
        assert "".join(pieces).startswith(sent) and streamed_content(events) == ""
        if last == "[DONE]":
            assert sent == "I can't help with that."
        else:
            assert "hel" not in sent, f"sent {sent!r}: part of the keyword got out"


@pytest.mark.parametrize("arguments", [
    '{"q": "ask competitor\\u002dx now"}',
    '{"q": "ask \\u0063\\u006fmpetitor\\u002D\\u0078 now"}',
    '{"q": "about project\\u0020falcon"}',
], ids=["one escape", "many escapes", "escaped space"])
@pytest.mark.parametrize("size", [1, 4, 50])
async def test_an_escaped_keyword_in_streamed_tool_arguments_is_refused(
        gateway, fake_upstream, arguments, size):
    fake_upstream.tool_calls = [("search", [arguments[i:i + size]
                                            for i in range(0, len(arguments), size)])]
    client = await gateway(guardrail_config("post_call", KEYWORDS), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("Go on.", stream=True))
    events = await sse_events(resp)
    keyword = "project falcon" if "falcon" in arguments else "competitor-x"
    assert events[-1] == blocked(keyword)
    # What the client got of the arguments, as its JSON parser will read it: never the keyword.
    sent = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)),
                  sent_of(events[:-1], 0, tool=0))
    assert keyword not in sent, f"sent {sent!r}"
