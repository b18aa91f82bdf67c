"""The official ``openai`` client against the gateway over real HTTP."""

import openai
import pytest

from doubles import PLUGINS, guardrail


@pytest.fixture
async def client(gateway, fake_upstream):
    fake_upstream.reply = "Hi there, friend."
    app_client = await gateway({"guardrails": [
        guardrail("no-secrets", block_word="password", default_on=True),
        guardrail("stream-check", mode="post_call", type_="stream_probe",
                  block_word="forbidden"),
    ]}, plugins=PLUGINS)
    async with openai.AsyncOpenAI(api_key="anything", base_url=str(app_client.make_url("/v1")),
                                  max_retries=0) as oai:
        yield oai


async def test_chat(client, fake_upstream):
    reply = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    assert reply.choices[0].message.content == "Hi there, friend."
    assert fake_upstream.last["messages"] == [{"role": "user", "content": "hello"}]


async def test_streaming(client):
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello"}], stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream
                    if chunk.choices])
    assert text == "Hi there, friend."


async def test_embeddings(client):
    result = await client.embeddings.create(model="gpt-4o", input=["a", "b"])
    assert len(result.data) == 2 and result.data[0].embedding == [0.1, 0.2, 0.3]


async def test_guardrail_block_is_bad_request_error(client, fake_upstream):
    with pytest.raises(openai.BadRequestError) as err:
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "my password is x"}])
    assert err.value.status_code == 400
    # What the SDK shows a person, and what a program reads.
    assert "Probe no-secrets saw password" in str(err.value)
    assert err.value.body["details"]["error"] == "Probe no-secrets saw password"
    assert err.value.type == "guardrail_violation" and err.value.code == "400"
    assert fake_upstream.received == []


async def test_extra_body_guardrails_and_block_mid_stream(client, fake_upstream):
    fake_upstream.chunks = ["all good ", "then forbidden ", "stuff"]
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "go"}], stream=True,
        extra_body={"guardrails": ["stream-check"]})
    seen = ""
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            if chunk.choices:
                seen += chunk.choices[0].delta.content or ""
    assert "forbidden" not in seen and "stuff" not in seen
    assert str(err.value).startswith("Probe stream-check saw forbidden")
    assert err.value.body["details"]["error"] == "Probe stream-check saw forbidden"


async def test_unknown_model_is_bad_request(client):
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}])
