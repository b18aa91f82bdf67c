"""No client input makes the gateway answer 5xx or log a traceback: each kind of input found
to (deep nesting, huge numbers, undecodable credentials, corrupt compression, NUL characters)
gets a 4xx in the OpenAI error shape -- on both databases where one is involved."""

import asyncio
import gzip
import logging

import orjson

import pytest

from admin_kit import ADMIN, admin_post, both_databases
from test_bad_input import assert_openai_error

HUGE = 2 ** 63


def tracebacks(caplog):
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def refused(resp, status=400):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert_openai_error(body, status)
    return body["error"]["message"]


@pytest.mark.parametrize("depth", [256, 600, 1024, 1100])
@pytest.mark.parametrize("field", ["metadata", "tools", "response_format"])
async def test_deep_nesting_in_a_passed_through_field(gateway, fake_upstream, chat, caplog,
                                                      field, depth):
    client = await gateway()
    # Written by hand: Python's json module cannot write JSON this deep.
    body = orjson.dumps(chat(**{field: {"x": "HOLE"}})).replace(
        b'"HOLE"', b"[" * (depth - 2) + b"]" * (depth - 2))
    resp = await client.post("/v1/chat/completions", data=body,
                             headers={"Content-Type": "application/json"})
    message = await refused(resp)
    assert "nested too deeply" in message or "depth limit exceeded" in message
    assert fake_upstream.received == []
    assert tracebacks(caplog) == []


@both_databases
@pytest.mark.parametrize("path,field,value", [
    ("/key/generate", "rpm_limit", HUGE),
    ("/key/generate", "tpm_limit", HUGE),
    ("/team/new", "rpm_limit", HUGE),
    ("/team/new", "tpm_limit", HUGE),
    ("/key/generate", "duration", "1" + "0" * 30 + "d"),
    ("/key/generate", "duration", "36501d"),
    ("/key/generate", "duration", "9" * 5000 + "s"),
])
async def test_numbers_too_large_to_store(start, caplog, path, field, value):
    client = await start()
    resp = await client.post(path, json={field: value}, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    [problem] = (await resp.json())["detail"]
    assert problem["loc"] == ["body", field]
    assert tracebacks(caplog) == []


@both_databases
@pytest.mark.parametrize("path", ["/key/generate", "/team/new"])
async def test_a_huge_budget_is_stored_as_the_number_it_is(start, caplog, path):
    client = await start()
    created = await admin_post(client, path, {"max_budget": HUGE})
    assert created["max_budget"] == float(HUGE)
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("header", [b"Authorization: Bearer ", b"x-api-key: ", b"api-key: "])
@pytest.mark.parametrize("token", [b"sk-\xff\xfe\x80", b"sk-caf\xe9"])
async def test_credentials_that_are_not_utf8(start, caplog, header, token):
    client = await start()
    body = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\n" + header + token + b"\r\n" +
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert_openai_error(orjson.loads(payload), 401)
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("body", [b"\x1f\x8b\x08\x00garbage", b"not gzip at all",
                                  gzip.compress(b'{"model": "gpt-4o"}', mtime=0)[:-6]])
async def test_a_corrupt_compressed_body(gateway, fake_upstream, caplog, body):
    client = await gateway()
    resp = await client.post("/v1/chat/completions", data=body, headers={
        "Content-Encoding": "gzip", "Content-Type": "application/json"})
    await refused(resp)
    assert fake_upstream.received == []
    assert tracebacks(caplog) == []


@both_databases
@pytest.mark.parametrize("method,path,payload", [
    ("post", "/key/generate", {"key_alias": "a\x00b"}),
    ("post", "/key/generate", {"metadata": {"note": "a\x00b"}}),
    ("post", "/key/generate", {"key": "sk-nul\x00key-4f2a9c8e1b7d3a65"}),
    ("post", "/key/generate", {"team_id": "t\x00"}),
    ("post", "/team/new", {"team_alias": "a\x00b"}),
    ("post", "/key/update", {"key": "sk-\x00", "key_alias": "x"}),
    ("get", "/key/info", {"key": "\x00"}),
    ("get", "/key/info", {"key": "sk-\x00"}),
    ("get", "/spend/logs", {"request_id": "\x00"}),
    ("get", "/key/list", {"team_id": "\x00"}),
    ("get", "/team/info", {"team_id": "\x00"}),
    ("get", "/key/info?key=sk-ok&key=%00", None),
])
async def test_nul_characters_in_admin_text(start, caplog, method, path, payload):
    client = await start()
    if method == "post":
        resp = await client.post(path, json=payload, headers=ADMIN)
    else:
        resp = await client.get(path, params=payload, headers=ADMIN)
    assert resp.status in (400, 404), await resp.text()
    assert_openai_error(await resp.json(), resp.status)
    assert tracebacks(caplog) == []


@both_databases
@pytest.mark.parametrize("extra", [{"user": "a\x00b"}, {"metadata": {"tags": ["t\x00"]}},
                                   {"metadata": {"spend_logs_metadata": {"k\x00": 1}}}])
async def test_nul_characters_in_what_the_spend_log_keeps(start, fake_upstream, chat, caplog,
                                                          extra):
    client = await start()
    resp = await client.post("/v1/chat/completions", json=chat(**extra), headers=ADMIN)
    assert "NUL" in await refused(resp)
    assert fake_upstream.received == []
    assert tracebacks(caplog) == []
