"""Tests for the `{{ cookiecutter.type_name }}` guardrail, through a real gateway over HTTP.

`gateway` and `fake_upstream` come from Gatehouse's pytest plugin (gatehouse.testing).
"""

import json

import pytest

import {{ cookiecutter.package }} as plugin
from gatehouse import hookimpl
from gatehouse.app import GATEWAY
from gatehouse.testing import GuardrailContract, InstallContract

PLUGIN = [("{{ cookiecutter.type_name }}", plugin)]


class TestContract(GuardrailContract):
    """The behaviour every Gatehouse guardrail owes its users."""

    plugin = plugin
    guardrail_type = "{{ cookiecutter.type_name }}"
    modes = ("pre_call", "post_call", "logging_only")
    blocked_text = "Tell me about project-x"
    blocked_reply = "The project-x launch is next week"
    rewritten_reply = "Mail ada@example.com for the launch notes."


class TestInstall(InstallContract):
    """What `pip install` of this project gives an operator: `gatehouse check-config` finds
    the type through the entry point in pyproject.toml and accepts config.yaml."""

    distribution = "{{ cookiecutter.distribution }}"
    entry_points = {"{{ cookiecutter.type_name }}": "{{ cookiecutter.package }}"}
    configs = {"config.yaml": "unknown guardrail type '{{ cookiecutter.type_name }}'"}


def config(mode, **params):
    return {"guardrails": [{"guardrail_name": "mine", "params": {
        "guardrail": "{{ cookiecutter.type_name }}", "mode": mode, "default_on": True, **params}}]}


def chat(text, **extra):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


async def test_pre_call_blocks_a_configured_term(gateway, fake_upstream):
    client = await gateway(config("pre_call", blocked_terms=["Falcon"]), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("status of falcon?"))
    assert resp.status == 400
    assert (await resp.json())["error"]["details"]["error"] == "Blocked term: falcon"
    assert fake_upstream.received == []


async def test_pre_call_takes_terms_from_the_request_extra_body(gateway):
    client = await gateway(config("pre_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat(
        "tell me about osprey",
        guardrails={"mine": {"extra_body": {"blocked_terms": ["osprey"]}}}))
    assert resp.status == 400


async def test_post_call_masks_emails_in_the_reply(gateway, fake_upstream):
    fake_upstream.reply = "Write to ada@example.com today."
    client = await gateway(config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("who do I write to?"))
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "Write to [EMAIL] today."
    assert resp.headers["x-gatehouse-applied-guardrails"] == "mine"


async def test_a_term_split_across_many_stream_chunks_is_never_sent(gateway, fake_upstream):
    fake_upstream.chunks = ["Our ", "pro", "ject", "-", "x launch"]
    client = await gateway(config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("news?", stream=True))
    text = await resp.text()
    assert "Blocked term in reply: project-x" in text
    assert "pro" not in text.replace("Blocked term in reply: project-x", "")


async def test_an_email_split_across_stream_chunks_is_masked(gateway, fake_upstream):
    fake_upstream.chunks = ["Write to ada@ex", "ample", ".com today."]
    client = await gateway(config("post_call"), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("who?", stream=True))
    text = await resp.text()
    assert "Write to [EMAIL] today." == "".join(
        choice["delta"].get("content") or ""
        for line in text.split("\n") if line.startswith("data: {")
        for choice in json.loads(line[6:])["choices"])
    assert "ada@" not in text


class Records:
    seen: list = []

    @hookimpl
    def on_success(self, record):
        self.seen.append(record)


async def test_logging_only_masks_the_log_not_the_call(gateway, fake_upstream):
    records = Records()
    client = await gateway(config("logging_only"), plugins=[*PLUGIN, ("records", records)])
    resp = await client.post("/v1/chat/completions", json=chat("card 4111 1111 1111 1111"))
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    assert fake_upstream.last["messages"][0]["content"] == "card 4111 1111 1111 1111"
    assert records.seen[-1]["request"]["messages"][0]["content"] == "card [NUMBER]"


@pytest.mark.parametrize("mode", ["pre_call", ["pre_call", "post_call"]])
async def test_clean_calls_pass(gateway, fake_upstream, mode):
    client = await gateway(config(mode), plugins=PLUGIN)
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
