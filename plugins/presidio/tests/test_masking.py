"""presidio through a running gateway: what Presidio is sent, what is masked or refused, and
what the upstream and the caller see."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import gatehouse_presidio
import pytest
from gatehouse import hookimpl
from gatehouse.testing import GATEWAY

BLOCKED = ("Blocked entity detected: CREDIT_CARD by Guardrail: pii. This entity is not "
           "allowed to be used in this request.")


def chat(messages: Any, **extra: Any) -> dict[str, Any]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {"model": "gpt-4o", "messages": messages, **extra}


def calls_to(presidio, route: str) -> list[dict[str, Any]]:
    return [body for path, body in zip(presidio.paths, presidio.received)
            if path.endswith(route)]


async def test_each_text_is_analysed_then_anonymized_and_sent_masked(
        presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(pii_entities_config={"EMAIL_ADDRESS": "MASK",
                                                         "PERSON": "MASK"})
    resp = await client.post("/v1/chat/completions", json=chat([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am Jane Doe, mail jane@example.com"}]))
    assert resp.status == 200, await resp.text()
    analyze = calls_to(presidio, "/analyze")
    assert sorted(analyze, key=lambda b: b["text"]) == [
        {"text": "Be brief.", "language": "en", "entities": ["EMAIL_ADDRESS", "PERSON"]},
        {"text": "I am Jane Doe, mail jane@example.com", "language": "en",
         "entities": ["EMAIL_ADDRESS", "PERSON"]}]
    # Only the text with findings goes to the anonymizer, with the analyzer's results.
    (anonymize,) = calls_to(presidio, "/anonymize")
    assert anonymize["text"] == "I am Jane Doe, mail jane@example.com"
    assert [(r["entity_type"], r["start"], r["end"]) for r in anonymize["analyzer_results"]] \
        == [("PERSON", 5, 13), ("EMAIL_ADDRESS", 20, 36)]
    assert fake_upstream.last["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am <PERSON>, mail <EMAIL_ADDRESS>"}]
    for headers in presidio.headers:
        assert headers["accept"] == "application/json"
        assert "authorization" not in headers


async def test_every_entity_is_masked_when_none_are_configured(presidio_gateway, presidio,
                                                              fake_upstream):
    client = await presidio_gateway()
    await client.post("/v1/chat/completions", json=chat("call 555-123-4567 today"))
    assert "entities" not in calls_to(presidio, "/analyze")[0]
    assert fake_upstream.last["messages"][0]["content"] == "call <PHONE_NUMBER> <DATE_TIME>"


async def test_clean_and_blank_texts_never_reach_the_anonymizer(presidio_gateway, presidio,
                                                               fake_upstream):
    client = await presidio_gateway()
    resp = await client.post("/v1/chat/completions", json=chat([
        {"role": "user", "content": "   "}, {"role": "user", "content": "hello there"}]))
    assert resp.status == 200
    assert [b["text"] for b in calls_to(presidio, "/analyze")] == ["hello there"]
    assert calls_to(presidio, "/anonymize") == []
    assert fake_upstream.last["messages"][1]["content"] == "hello there"


async def test_a_block_entity_refuses_the_call(presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(pii_entities_config={"CREDIT_CARD": "BLOCK",
                                                         "EMAIL_ADDRESS": "MASK"})
    resp = await client.post("/v1/chat/completions", json=chat(
        "mail a@b.com, card 4111 1111 1111 1111"))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["message"] == BLOCKED
    assert error["type"] == "guardrail_violation"
    assert "4111" not in await resp.text()
    assert fake_upstream.received == []
    assert calls_to(presidio, "/anonymize") == []


async def test_thresholds_deny_list_and_allow_list_decide_what_counts(
        presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(
        # PHONE_NUMBER scores 0.75 and PERSON 0.85 in the fake; the type's own threshold wins.
        presidio_score_thresholds={"ALL": 0.8, "PERSON": 0.9, "EMAIL_ADDRESS": 0.5},
        presidio_entities_deny_list=["DATE_TIME"],
        presidio_phrase_allow_list=["ADA@EXAMPLE.COM"])
    await client.post("/v1/chat/completions", json=chat(
        "John Smith at 555-123-4567 today, mail ada@example.com or bob@example.com"))
    assert fake_upstream.last["messages"][0]["content"] == \
        "John Smith at 555-123-4567 today, mail ada@example.com or <EMAIL_ADDRESS>"
    # Only what counts is sent to be anonymized.
    (anonymize,) = calls_to(presidio, "/anonymize")
    assert [r["entity_type"] for r in anonymize["analyzer_results"]] == ["EMAIL_ADDRESS"]


async def test_without_thresholds_every_score_counts(presidio_gateway, presidio, fake_upstream):
    presidio.decide = lambda path, body: (
        [{"entity_type": "ZIP", "start": 4, "end": 9, "score": 0.01}]
        if path.endswith("/analyze") else {"text": "zip <ZIP>", "items": []})
    client = await presidio_gateway()
    await client.post("/v1/chat/completions", json=chat("zip 12345"))
    assert fake_upstream.last["messages"][0]["content"] == "zip <ZIP>"


async def test_a_message_in_text_parts_is_analysed_as_one_text(presidio_gateway, presidio,
                                                              fake_upstream):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    content = [{"type": "text", "text": "write to jane.d"}, image,
               {"type": "text", "text": "oe@example.com and Ada Lovelace"}]
    client = await presidio_gateway()
    await client.post("/v1/chat/completions", json=chat([{"role": "user", "content": content}]))
    # An address split across two parts is one address to the model, and to the analyzer.
    assert [b["text"] for b in calls_to(presidio, "/analyze")] == [
        "write to jane.doe@example.com and Ada Lovelace"]
    # Each part is anonymized with the spans inside it, so no piece of it goes upstream.
    assert fake_upstream.last["messages"][0]["content"] == [
        {"type": "text", "text": "write to <EMAIL_ADDRESS>"}, image,
        {"type": "text", "text": "<EMAIL_ADDRESS> and <PERSON>"}]


async def test_every_text_of_a_call_is_analysed_at_once(presidio_gateway, presidio,
                                                        fake_upstream):
    both_in = asyncio.Event()

    async def wait_for_both() -> None:
        # The analyzer answers only once both texts are with it: one at a time would stall.
        if len(calls_to(presidio, "/analyze")) == 2:
            both_in.set()
        await both_in.wait()

    presidio.before_reply = wait_for_both
    client = await presidio_gateway(timeout=5)
    resp = await client.post("/v1/chat/completions", json=chat([
        {"role": "user", "content": "first"}, {"role": "user", "content": "second"}]))
    assert resp.status == 200, await resp.text()


async def test_prompts_are_masked_but_the_end_user_id_is_not(presidio_gateway, presidio,
                                                            fake_upstream):
    client = await presidio_gateway()
    await client.post("/v1/completions", json={"model": "gpt-4o", "user": "jane@example.com",
                                                "prompt": ["mail jane@example.com", "hi"]})
    assert fake_upstream.last["prompt"] == ["mail <EMAIL_ADDRESS>", "hi"]
    assert fake_upstream.last["user"] == "jane@example.com"


async def test_identifiers_are_left_as_they_are(presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway()
    resp = await client.post("/v1/chat/completions", json=chat(
        [{"role": "user", "name": "Jane", "content": "I am Jane"}], user="John"))
    assert resp.status == 200
    # A message's name must stay a valid name upstream; the user id is the caller's.
    assert fake_upstream.last["messages"] == [
        {"role": "user", "name": "Jane", "content": "I am <PERSON>"}]
    assert fake_upstream.last["user"] == "John"


async def test_the_language_comes_from_the_request_then_config(presidio_gateway, presidio):
    client = await presidio_gateway(presidio_language="de")
    for extra, language in [
            ({}, "de"),
            ({"metadata": {"guardrail_config": {"language": "es"}}}, "es"),
            ({"guardrail_config": {"language": "es"},
              "metadata": {"guardrail_config": {"language": "en"}}}, "es")]:
        await client.post("/v1/chat/completions", json=chat("hello", **extra))
        assert presidio.last["language"] == language, extra
    client = await presidio_gateway()
    await client.post("/v1/chat/completions", json=chat("hello"))
    assert presidio.last["language"] == "en"


async def test_an_unsupported_language_fails_closed_naming_the_analyzer(
        presidio_gateway, presidio, fake_upstream, caplog):
    client = await presidio_gateway()
    resp = await client.post("/v1/chat/completions", json=chat(
        "hello", metadata={"guardrail_config": {"language": "xx"}}))
    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert message == (
        "Guardrail 'pii' could not check this request: Presidio analyzer returned invalid "
        "response; cannot verify PII when PII protection is configured: Presidio /analyze "
        "answered an unexpected reply (body: list_type)")
    assert "Presidio analyzer" in caplog.text
    assert fake_upstream.received == []


async def test_extra_body_is_merged_into_the_analysis_but_cannot_replace_the_policy(
        presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(pii_entities_config={"CREDIT_CARD": "BLOCK"})
    resp = await client.post("/v1/chat/completions", json=chat(
        "card 4111 1111 1111 1111", guardrails={"pii": {"extra_body": {
            "correlation_id": "abc", "return_decision_process": True,
            "entities": [], "text": "nothing here"}}}))
    assert resp.status == 400
    assert presidio.last == {"correlation_id": "abc", "return_decision_process": True,
                             "entities": ["CREDIT_CARD"], "text": "card 4111 1111 1111 1111",
                             "language": "en"}


async def test_ad_hoc_recognizers_are_read_at_start_and_sent(gateway, presidio, presidio_params,
                                                            fake_upstream, tmp_path):
    recognizers = [{"name": "Zip", "supported_language": "en", "supported_entity": "ZIP",
                    "patterns": [{"name": "zip", "regex": "\\b\\d{5}\\b", "score": 0.4}],
                    "context": ["zip"]}]
    (tmp_path / "recognizers.json").write_text(json.dumps(recognizers))
    client = await gateway({"guardrails": [{"guardrail_name": "pii", "litellm_params": {
        "guardrail": "presidio", "default_on": True, **presidio_params,
        "presidio_ad_hoc_recognizers": "./recognizers.json"}}]},
        plugins=[("presidio", gatehouse_presidio)], base_dir=tmp_path)
    (tmp_path / "recognizers.json").unlink()  # read once, at start
    await client.post("/v1/chat/completions", json=chat("my zip is 10115"))
    assert calls_to(presidio, "/analyze")[0]["ad_hoc_recognizers"] == recognizers
    assert fake_upstream.last["messages"][0]["content"] == "my zip is <ZIP>"


async def test_during_call_refuses_but_cannot_mask(presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(mode="during_call",
                                    pii_entities_config={"CREDIT_CARD": "BLOCK",
                                                         "EMAIL_ADDRESS": "MASK"})
    resp = await client.post("/v1/chat/completions", json=chat("mail a@b.com"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "mail a@b.com"
    assert calls_to(presidio, "/anonymize") == []
    resp = await client.post("/v1/chat/completions", json=chat("card 4111 1111 1111 1111"))
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == BLOCKED


async def test_post_call_masks_or_refuses_the_reply(presidio_gateway, presidio, fake_upstream):
    client = await presidio_gateway(mode="post_call",
                                    pii_entities_config={"CREDIT_CARD": "BLOCK",
                                                         "PERSON": "MASK"})
    fake_upstream.reply = "Ada Lovelace wrote the first program."
    resp = await client.post("/v1/chat/completions", json=chat("who was John Smith?"))
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "<PERSON> wrote the first program."
    # The request was not checked: post_call is for the reply.
    assert fake_upstream.last["messages"][0]["content"] == "who was John Smith?"
    fake_upstream.reply = "Use 4111 1111 1111 1111."
    resp = await client.post("/v1/chat/completions", json=chat("a card to test with?"))
    assert resp.status == 400
    assert (await resp.json())["error"]["message"] == BLOCKED


MAIL_REPLY = "Write to ada.lovelace@example.com, she answers."


@pytest.mark.parametrize("cuts", [(20,), (12, 26), (11, 19, 30), (9, 15, 22, 31)])
async def test_an_address_split_across_two_to_five_chunks_reaches_the_client_masked(
        presidio_gateway, presidio, fake_upstream, cuts):
    client = await presidio_gateway(mode="post_call",
                                    pii_entities_config={"EMAIL_ADDRESS": "MASK"})
    fake_upstream.chunks = [MAIL_REPLY[a:b] for a, b in
                            zip((0, *cuts), (*cuts, len(MAIL_REPLY)))]
    resp = await client.post("/v1/chat/completions", json=chat(
        "how do I reach her?", stream=True, stream_options={"include_usage": True}))
    events = [line[6:] for line in (await resp.text()).split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    pieces = [choice["delta"].get("content") or ""
              for event in events[:-1] for choice in json.loads(event)["choices"]]
    assert "".join(pieces) == "Write to <EMAIL_ADDRESS>, she answers."
    # Presidio saw the whole reply once, not a piece of it per chunk.
    assert [body["text"] for body in calls_to(presidio, "/analyze")] == [MAIL_REPLY]


async def test_filter_scope_picks_the_side_of_the_call(presidio_gateway, presidio,
                                                       fake_upstream):
    fake_upstream.reply = "Ada Lovelace says hi"
    client = await presidio_gateway(presidio_filter_scope="output")
    resp = await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert fake_upstream.last["messages"][0]["content"] == "I am Jane Doe"
    assert (await resp.json())["choices"][0]["message"]["content"] == "<PERSON> says hi"
    client = await presidio_gateway(mode=["pre_call", "post_call"],
                                    presidio_filter_scope="input")
    resp = await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert fake_upstream.last["messages"][0]["content"] == "I am <PERSON>"
    assert (await resp.json())["choices"][0]["message"]["content"] == "Ada Lovelace says hi"
    client = await presidio_gateway(presidio_filter_scope="both")
    resp = await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert fake_upstream.last["messages"][0]["content"] == "I am <PERSON>"
    assert (await resp.json())["choices"][0]["message"]["content"] == "<PERSON> says hi"


async def test_apply_to_output_masks_the_reply_too(presidio_gateway, presidio, fake_upstream):
    fake_upstream.reply = "Ada Lovelace says hi"
    client = await presidio_gateway(apply_to_output=True)
    resp = await client.post("/v1/chat/completions", json=chat("I am Jane Doe"))
    assert fake_upstream.last["messages"][0]["content"] == "I am <PERSON>"
    assert (await resp.json())["choices"][0]["message"]["content"] == "<PERSON> says hi"
    assert resp.headers["x-litellm-applied-guardrails"] == "pii"


def recording(records: list[dict[str, Any]]) -> SimpleNamespace:
    """A plugin whose on_success callback keeps each log record in ``records``."""
    return SimpleNamespace(on_success=hookimpl(lambda record: records.append(record)))


async def test_logging_only_masks_what_is_logged_and_nothing_else(gateway, presidio,
                                                                 presidio_params, fake_upstream):
    records: list[dict[str, Any]] = []
    client = await gateway({"guardrails": [{"guardrail_name": "pii", "litellm_params": {
        "guardrail": "presidio", "mode": "logging_only", "default_on": True, **presidio_params,
        "pii_entities_config": {"CREDIT_CARD": "BLOCK", "PERSON": "MASK"}}}]},
        plugins=[("presidio", gatehouse_presidio), ("recorder", recording(records))])
    fake_upstream.reply = "Hi Jane Doe"
    resp = await client.post("/v1/chat/completions", json=chat(
        "I am Jane Doe, card 4111 1111 1111 1111"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == \
        "I am Jane Doe, card 4111 1111 1111 1111"
    assert (await resp.json())["choices"][0]["message"]["content"] == "Hi Jane Doe"
    await client.app[GATEWAY].call_log.drain()
    (record,) = records
    # Nothing can be refused any more: a BLOCK entity is masked in the log like the rest.
    assert record["request"]["messages"][0]["content"] == "I am <PERSON>, card <CREDIT_CARD>"
    assert record["response"]["choices"][0]["message"]["content"] == "Hi <PERSON>"


async def test_what_was_masked_is_logged_by_type_never_by_value(presidio_gateway, presidio,
                                                               caplog):
    client = await presidio_gateway()
    with caplog.at_level(logging.INFO, logger="gatehouse.presidio"):
        await client.post("/v1/chat/completions", json=chat("mail a@b.com or c@d.com, Jane"))
    assert "{'EMAIL_ADDRESS': 2, 'PERSON': 1}" in caplog.text
    assert "a@b.com" not in caplog.text


async def test_the_call_log_counts_what_was_masked_and_keeps_the_findings(
        gateway, presidio, presidio_params):
    records: list[dict[str, Any]] = []
    client = await gateway({"guardrails": [{"guardrail_name": "pii", "litellm_params": {
        "guardrail": "presidio", "mode": "pre_call", "default_on": True, **presidio_params}}]},
        plugins=[("presidio", gatehouse_presidio), ("recorder", recording(records))])
    resp = await client.post("/v1/chat/completions", json=chat(
        "I am Jane Doe, mail jane@example.com or j@example.org"))
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    ((entry,),) = [record["guardrail_information"] for record in records]
    assert (entry["guardrail_name"], entry["guardrail_provider"], entry["guardrail_mode"],
            entry["guardrail_status"]) == ("pii", "presidio", "pre_call",
                                           "guardrail_intervened")
    assert entry["masked_entity_count"] == {"PERSON": 1, "EMAIL_ADDRESS": 2}
    assert entry["guardrail_response"] == [
        {"entity_type": "PERSON", "start": 5, "end": 13, "score": 0.85},
        {"entity_type": "EMAIL_ADDRESS", "start": 20, "end": 36, "score": 1.0},
        {"entity_type": "EMAIL_ADDRESS", "start": 40, "end": 53, "score": 1.0}]
