"""bedrock through a running gateway: the signed ApplyGuardrail request, the verdicts, and the
ways of authenticating."""

from __future__ import annotations

import re
from typing import Any

import gatehouse_bedrock
import pytest
from gatehouse.gateway import StartupError
from moto.sts.models import sts_backends

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "my mail is old@example.com"},
    {"role": "assistant", "content": "Noted."},
    {"role": "user", "content": [{"type": "text", "text": "write to "},
                                 {"type": "text", "text": "new@example.com"}]},
]


def chat(messages: Any, **extra: Any) -> dict[str, Any]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return {"model": "gpt-4o", "messages": messages, **extra}


def credential_scope(headers: dict[str, str]) -> list[str]:
    return re.search(r"Credential=([^,]+),", headers["authorization"])[1].split("/")


async def test_the_request_is_signed_for_the_region_and_names_the_guardrail(
        bedrock_gateway, bedrock, fake_upstream, signed_params):
    client = await bedrock_gateway(guardrailVersion="3")
    resp = await client.post("/v1/chat/completions", json=chat("hello there"))
    assert resp.status == 200, await resp.text()
    assert bedrock.paths == ["/guardrail/gr-test-1/version/3/apply"]
    assert bedrock.status == 200, "the fake checked the signature and accepted it"
    assert credential_scope(bedrock.headers[0])[2:] == [signed_params["aws_region_name"],
                                                        "bedrock", "aws4_request"]
    assert bedrock.headers[0]["content-type"] == "application/json"
    assert bedrock.received == [{"source": "INPUT",
                                 "content": [{"text": {"text": "hello there"}}]}]


async def test_a_wrong_secret_is_refused_by_aws_and_fails_closed(bedrock_gateway, bedrock,
                                                                 fake_upstream):
    client = await bedrock_gateway(aws_secret_access_key="not-the-secret")
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "HTTP 403: The request signature we calculated does not match" in message
    assert "not-the-secret" not in message
    assert fake_upstream.received == []


async def test_every_text_is_sent_and_masked_texts_replace_them_in_order(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway(mask_request_content=True)
    resp = await client.post("/v1/chat/completions", json=chat(CONVERSATION))
    assert resp.status == 200, await resp.text()
    assert [c["text"]["text"] for c in bedrock.last["content"]] == [
        "Be brief.", "my mail is old@example.com", "Noted.", "write to new@example.com"]
    sent = fake_upstream.last["messages"]
    assert sent[1]["content"] == "my mail is {EMAIL}"
    # A text made of parts is masked as one; the masked text lands in its first part.
    assert sent[3]["content"] == [{"type": "text", "text": "write to {EMAIL}"},
                                  {"type": "text", "text": ""}]
    assert sent[0] == CONVERSATION[0] and sent[2] == CONVERSATION[2]


async def test_without_mask_request_content_anonymized_text_goes_on_as_written(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway()
    resp = await client.post("/v1/chat/completions", json=chat("mail me at a@b.com"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "mail me at a@b.com"


async def test_only_the_latest_user_turn_when_asked(bedrock_gateway, bedrock):
    client = await bedrock_gateway(experimental_use_latest_role_message_only=True)
    await client.post("/v1/chat/completions", json=chat(CONVERSATION))
    assert bedrock.last["content"] == [{"text": {"text": "write to new@example.com"}}]


async def test_a_blocked_item_refuses_with_the_assessments_and_no_matched_text(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway(mask_request_content=True)
    resp = await client.post("/v1/chat/completions", json=chat("a forbidden topic"))
    assert resp.status == 400
    details = (await resp.json())["error"]["details"]
    assert details == {
        "error": "Violated guardrail policy",
        "bedrock_guardrail_response": "Sorry, I can't talk about that.",
        "guardrailIdentifier": "gr-test-1", "guardrailVersion": "DRAFT",
        "assessments": [
            {"policy": "topicPolicy", "matches": [
                {"category": "topics", "name": "Forbidden", "type": "DENY",
                 "action": "BLOCKED"}]},
            {"policy": "wordPolicy", "matches": [
                {"category": "customWords", "action": "BLOCKED"}]}]}
    assert fake_upstream.received == []


async def test_replies_are_checked_as_output_and_masked_when_asked(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway(mode="post_call", mask_response_content=True)
    fake_upstream.reply = "her mail is x@y.com"
    resp = await client.post("/v1/chat/completions", json=chat("hi"))
    assert resp.status == 200
    assert bedrock.last == {"source": "OUTPUT", "content": [{"text": {"text":
                                                                     "her mail is x@y.com"}}]}
    assert (await resp.json())["choices"][0]["message"]["content"] == "her mail is {EMAIL}"


async def test_disable_exception_on_block_answers_with_bedrocks_text(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway(mode="post_call", disable_exception_on_block=True)
    fake_upstream.reply = "a forbidden reply"
    resp = await client.post("/v1/chat/completions", json=chat("hi"))
    assert resp.status == 200
    body = await resp.json()
    assert body["model"] == "bedrock-guardrail"
    assert body["choices"][0]["message"]["content"] == "Sorry, I can't talk about that."


@pytest.mark.parametrize("mode", ["pre_call", "during_call"])
async def test_disable_exception_on_block_answers_a_blocked_request_instead(
        bedrock_gateway, bedrock, fake_upstream, mode):
    client = await bedrock_gateway(mode=mode, disable_exception_on_block=True)
    resp = await client.post("/v1/chat/completions", json=chat("a forbidden topic"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["model"] == "bedrock-guardrail"
    assert body["choices"][0]["message"]["content"] == "Sorry, I can't talk about that."
    if mode == "pre_call":
        assert fake_upstream.received == []


async def test_a_streamed_reply_is_masked_before_any_of_it_is_sent(
        bedrock_gateway, bedrock, fake_upstream):
    client = await bedrock_gateway(mode="post_call", mask_response_content=True)
    fake_upstream.chunks = ["her mail is x@", "y.com, ok"]
    resp = await client.post("/v1/chat/completions", json=chat("hi", stream=True))
    text = await resp.text()
    assert "x@y.com" not in text and "x@" not in text
    assert "her mail is {EMAIL}, ok" == "".join(
        re.findall(r'"content":"([^"]*)"', text))


async def test_extra_body_is_merged_into_the_request(bedrock_gateway, bedrock):
    client = await bedrock_gateway()
    await client.post("/v1/chat/completions", json=chat("hi", guardrails={
        "bedrock-guard": {"extra_body": {"outputScope": "FULL"}}}))
    assert bedrock.last["outputScope"] == "FULL"
    assert bedrock.last["source"] == "INPUT"


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(gateway, bedrock, aws_env):
    bedrock.bearer = "bedrock-api-key-123"
    aws_env.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-123")
    client = await gateway({"guardrails": [{"guardrail_name": "b", "litellm_params": {
        "guardrail": "bedrock", "guardrailIdentifier": "g", "default_on": True,
        "aws_bedrock_runtime_endpoint": bedrock.url}}]},
        plugins=[("bedrock", gatehouse_bedrock)])
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200, await resp.text()
    assert bedrock.headers[0]["authorization"] == "Bearer bedrock-api-key-123"


async def test_region_and_keys_come_from_the_environment(gateway, bedrock, aws_env,
                                                         signed_params):
    aws_env.setenv("AWS_REGION", "ap-south-1")
    aws_env.setenv("AWS_ACCESS_KEY_ID", signed_params["aws_access_key_id"])
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", signed_params["aws_secret_access_key"])
    client = await gateway({"guardrails": [{"guardrail_name": "b", "litellm_params": {
        "guardrail": "bedrock", "guardrailIdentifier": "g", "default_on": True,
        "aws_bedrock_runtime_endpoint": bedrock.url}}]},
        plugins=[("bedrock", gatehouse_bedrock)])
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200, await resp.text()
    assert credential_scope(bedrock.headers[0])[2] == "ap-south-1"


def sts_secret(access_key: str) -> str | None:
    """The secret moto's STS issued with an access key."""
    for account in sts_backends.values():
        for backend in account.values():
            for role in backend.assumed_roles:
                if role.access_key_id == access_key:
                    return role.secret_access_key
    return None


async def test_an_assumed_role_signs_with_its_own_session_credentials(
        bedrock_gateway, bedrock, aws_server, signed_params):
    bedrock.secret_for = sts_secret
    client = await bedrock_gateway(
        aws_role_name="arn:aws:iam::123456789012:role/guardrails",
        aws_session_name="gatehouse-test", aws_sts_endpoint=aws_server)
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200, await resp.text()
    headers = bedrock.headers[0]
    assert credential_scope(headers)[0] != signed_params["aws_access_key_id"]
    assert headers.get("x-amz-security-token"), "assumed-role requests carry a session token"


async def test_no_credentials_stops_the_start_saying_where_to_put_them(gateway, bedrock,
                                                                       aws_env):
    with pytest.raises(StartupError, match="failed to start: no AWS credentials: set api_key"):
        await gateway({"guardrails": [{"guardrail_name": "b", "litellm_params": {
            "guardrail": "bedrock", "guardrailIdentifier": "g",
            "aws_bedrock_runtime_endpoint": bedrock.url}}]},
            plugins=[("bedrock", gatehouse_bedrock)])
