"""``output_parse_pii``: numbered tokens upstream, the originals back in the reply, streams
included; and streamed replies whose own PII is masked before any of it is sent."""

from __future__ import annotations

from typing import Any

import orjson

REQUEST = "I am Jane Doe, mail jane@example.com. Again: Jane Doe"


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


async def streamed(client, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The stream's events (without [DONE]) and all the content they carried."""
    resp = await client.post("/v1/chat/completions", json={**body, "stream": True})
    lines = [line[6:] for line in (await resp.text()).split("\n") if line.startswith("data: ")]
    events = [orjson.loads(line) for line in lines if line != "[DONE]"]
    content = "".join(choice.get("delta", {}).get("content") or ""
                      for event in events for choice in event.get("choices", ()))
    return events, content


def contents(events: list[dict[str, Any]]) -> list[str]:
    return [c for event in events for choice in event.get("choices", ())
            if (c := choice.get("delta", {}).get("content"))]


async def test_tokens_go_upstream_and_the_originals_come_back(presidio_gateway, presidio,
                                                             fake_upstream):
    client = await presidio_gateway(output_parse_pii=True)
    fake_upstream.reply = "Hello <PERSON_1>, I will write to <EMAIL_ADDRESS_2>."
    resp = await client.post("/v1/chat/completions", json=chat(REQUEST))
    # Numbered left to right; the same person is the same token.
    assert fake_upstream.last["messages"][0]["content"] == \
        "I am <PERSON_1>, mail <EMAIL_ADDRESS_2>. Again: <PERSON_1>"
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "Hello Jane Doe, I will write to jane@example.com."
    # The guardrail makes the tokens itself: the anonymizer is not asked.
    assert all(path == "/analyze" for path in presidio.paths)


async def test_tokens_are_numbered_across_the_whole_request(presidio_gateway, presidio,
                                                           fake_upstream):
    client = await presidio_gateway(output_parse_pii=True)
    await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [
        {"role": "user", "content": "I am Jane"}, {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "call John Sm"},
                                     {"type": "text", "text": "ith or Jane"}]}]})
    sent = fake_upstream.last["messages"]
    assert sent[0]["content"] == "I am <PERSON_1>"
    # A name split across parts gets one token, in the part where it starts.
    assert sent[2]["content"] == [{"type": "text", "text": "call <PERSON_2>"},
                                  {"type": "text", "text": " or <PERSON_1>"}]


async def test_a_call_restores_only_its_own_tokens(presidio_gateway, fake_upstream):
    client = await presidio_gateway(output_parse_pii=True)
    await client.post("/v1/chat/completions", json=chat(REQUEST))
    fake_upstream.reply = "Hello <PERSON_1>"
    resp = await client.post("/v1/chat/completions", json=chat("nothing personal"))
    assert (await resp.json())["choices"][0]["message"]["content"] == "Hello <PERSON_1>"


async def test_a_token_split_across_chunks_is_restored_whole(presidio_gateway, fake_upstream):
    client = await presidio_gateway(output_parse_pii=True)
    fake_upstream.chunks = ["Hello <PER", "SON_1>, your mail <EMAIL_", "ADDRESS_2> is",
                            " ok <3 <b>"]
    events, content = await streamed(client, chat(REQUEST))
    assert content == "Hello Jane Doe, your mail jane@example.com is ok <3 <b>"
    # Text streams as it comes, held back only while it may be the start of a token.
    assert contents(events) == ["Hello ", "Jane Doe, your mail ", "jane@example.com is",
                                " ok <3 <b>"]


async def test_streamed_tool_call_arguments_are_restored(presidio_gateway, fake_upstream):
    client = await presidio_gateway(output_parse_pii=True)
    fake_upstream.tool_calls = [("send_mail", ['{"to": "<EMAIL', '_ADDRESS_2>"}'])]
    events, _ = await streamed(client, chat(REQUEST))
    arguments = "".join(call["function"].get("arguments") or ""
                        for event in events for choice in event["choices"]
                        for call in choice.get("delta", {}).get("tool_calls") or ())
    assert arguments == '{"to": "jane@example.com"}'


async def test_the_reference_setup_masks_the_reply_and_restores_the_callers_own(
        presidio_gateway, presidio, fake_upstream):
    # As the reference configures it: pre_call, scope both, output_parse_pii.
    client = await presidio_gateway(output_parse_pii=True, presidio_filter_scope="both")
    fake_upstream.reply = "Hi <PERSON_1>, ask Ada Lovelace."
    resp = await client.post("/v1/chat/completions", json=chat(REQUEST))
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "Hi Jane Doe, ask <PERSON>."
    fake_upstream.chunks = ["Hi <PERSON_1>, write to ada.l", "ovelace@example.com now"]
    events, content = await streamed(client, chat(REQUEST))
    assert content == "Hi Jane Doe, write to <EMAIL_ADDRESS> now"
    # An address split across chunks is never sent in part.
    assert not any("ada" in piece for piece in contents(events))
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


async def test_a_block_entity_in_a_streamed_reply_ends_the_stream_unsent(
        presidio_gateway, fake_upstream):
    client = await presidio_gateway(mode="post_call",
                                    pii_entities_config={"CREDIT_CARD": "BLOCK"})
    fake_upstream.chunks = ["Try 4111 1111", " 1111 1111 and", " tell me"]
    events, content = await streamed(client, chat("a test card?"))
    assert "4111" not in content and "1111" not in content
    assert events[-1]["error"]["message"].startswith("Blocked entity detected: CREDIT_CARD")


async def test_every_choice_of_a_checked_stream_is_masked(presidio_gateway, fake_upstream):
    client = await presidio_gateway(mode="post_call")
    fake_upstream.chunks = ["mail ada@exa", "mple.com"]
    fake_upstream.more_choices = [["ask John", " Smith"]]
    events, _ = await streamed(client, chat("two answers", n=2))
    by_choice: dict[int, str] = {}
    for event in events:
        for choice in event["choices"]:
            by_choice[choice["index"]] = (by_choice.get(choice["index"], "")
                                          + (choice["delta"].get("content") or ""))
    assert by_choice == {0: "mail <EMAIL_ADDRESS>", 1: "ask <PERSON>"}
