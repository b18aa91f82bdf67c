"""Hostile input, generated: mutated chat, completion, embedding and admin bodies, raw bytes and
hostile headers, thrown at a real gateway (on SQLite, with the example's guardrails) over real
HTTP. Whatever arrives, the answer is never a 5xx, always JSON, and the log never holds a
traceback."""

from __future__ import annotations

import http.client
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_cli import STRONG_KEY, free_port, serving

CONFIG = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: mock/gpt-4o-mini}}
guardrails:
  - guardrail_name: hide-secrets
    litellm_params: {{guardrail: hide-secrets, mode: [pre_call, post_call], default_on: true}}
  - guardrail_name: no-competitors
    litellm_params:
      guardrail: banned_keywords
      mode: [pre_call, post_call]
      default_on: true
      banned_keywords_list: [competitor-x]
general_settings:
  master_key: {key}
  database_path: {db}
"""
CALLS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
ADMIN = ("/key/generate", "/key/update", "/key/delete", "/team/new", "/team/update",
         "/customer/block", "/customer/unblock", "/spend/calculate")
QUERIES = ("/key/info?key=", "/spend/logs?request_id=", "/team/info?team_id=",
           "/audit/logs?object_id=", "/key/list?page=")
MAX_DEPTH = 1100  # past orjson's 1,024 and its serialiser's 255

text = st.text(max_size=40)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(text, inner, max_size=4), max_leaves=12)


class Deep:
    """A value nested ``depth`` times, past the limits of the JSON libraries on the way; it is
    written out by :func:`encoded`, since Python's own encoder would recurse as deep."""

    def __init__(self, depth: int, in_objects: bool, leaf: object):
        self.depth, self.in_objects, self.leaf = depth, in_objects, leaf


deep = st.builds(Deep, st.integers(min_value=200, max_value=MAX_DEPTH), st.booleans(), scalars)


anything = json_values | deep
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system",
                                                           "tool"]) | anything},
                                optional={"content": anything, "name": anything,
                                          "tool_calls": anything, "function_call": anything})
call_body = st.fixed_dictionaries(
    {"model": st.just("gpt-4o-mini") | anything},
    optional={"messages": st.lists(message, max_size=3) | anything, "prompt": anything,
              "input": anything, "stream": st.booleans() | anything, "user": anything,
              "metadata": anything, "guardrails": anything, "tools": anything,
              "stream_options": anything, "max_tokens": anything})
admin_body = st.dictionaries(
    st.sampled_from(["key", "keys", "team_id", "team_ids", "user_id", "user_ids", "models",
                     "max_budget", "rpm_limit", "tpm_limit", "duration", "metadata",
                     "guardrails", "permissions", "key_alias", "team_alias", "blocked",
                     "members_with_roles", "model", "messages", "completion_response"]),
    anything, max_size=6)
header_text = st.binary(max_size=60).map(lambda b: b.decode("latin-1")).filter(
    lambda v: "\r" not in v and "\n" not in v and "\x00" not in v)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(key=STRONG_KEY, db=folder / "gatehouse.db"))
    port, log = free_port(), folder / "gatehouse.log"
    with serving(log, port, "--config", str(config), "--port", str(port),
                 "--host", "127.0.0.1"):
        yield port, log
    assert "Traceback" not in log.read_text()


def send(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value.encode("latin-1"))
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        connection.close()


def check(status: int, content_type: str, raw: bytes) -> None:
    assert status < 500, raw[:500]
    assert content_type.startswith(("application/json", "text/event-stream")), raw[:200]
    answer = orjson.loads(raw) if content_type.startswith("application/json") else None
    if answer is None or status < 400:
        return
    if "detail" not in answer:
        assert isinstance(answer["error"]["message"], str)
    elif status == 422 and isinstance(answer["detail"], list):
        # An admin body or query that fails validation: the validation shape.
        assert all(isinstance(p["msg"], str) for p in answer["detail"])
    else:
        # Errors LiteLLM answers raw, as {"detail": ...}.
        assert answer["detail"]


def encoded(body) -> bytes:
    return dump(body).encode()


def dump(value) -> str:
    if isinstance(value, Deep):
        opening, closing = ('{"k":', "}") if value.in_objects else ("[", "]")
        return opening * value.depth + dump(value.leaf) + closing * value.depth
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
ADMIN_HEADERS = {"Authorization": f"Bearer {STRONG_KEY}", "Content-Type": "application/json"}


@FUZZ
@given(path=st.sampled_from(CALLS), body=call_body | anything)
def test_mutated_call_bodies(server, path, body):
    port, _ = server
    check(*send(port, "POST", path, encoded(body), ADMIN_HEADERS))


@FUZZ
@given(path=st.sampled_from(ADMIN), body=admin_body | anything)
def test_mutated_admin_bodies(server, path, body):
    port, _ = server
    check(*send(port, "POST", path, encoded(body), ADMIN_HEADERS))


@FUZZ
@given(path=st.sampled_from(QUERIES), value=st.text(max_size=30))
def test_hostile_query_parameters(server, path, value):
    port, _ = server
    from urllib.parse import quote
    check(*send(port, "GET", path + quote(value, safe=""), None, ADMIN_HEADERS))


@FUZZ
@given(path=st.sampled_from(CALLS + ADMIN), raw=st.binary(max_size=200),
       authorization=header_text, api_key=header_text,
       content_type=st.sampled_from(["application/json", "text/plain", "",
                                     "application/x-www-form-urlencoded"]),
       gzip=st.booleans())
def test_raw_bodies_and_hostile_headers(server, path, raw, authorization, api_key,
                                        content_type, gzip):
    port, _ = server
    headers = {"Authorization": authorization, "x-api-key": api_key,
               "Content-Type": content_type}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    check(*send(port, "POST", path, raw, headers))
