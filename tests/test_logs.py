"""Logs people can use: one access line per request (never a key or a prompt), JSON lines on
request, the upstream request shown by --detailed_debug with its secrets masked, and upstream
and guardrail failures logged once, naming the request."""

import logging
import urllib.error
import urllib.request

import orjson
import pytest
import yaml

from admin_kit import ADMIN, admin_post, bearer
from test_cli import free_port, serving

PROMPT = "my very private prompt text"
UPSTREAM_KEY = "sk-upstream-credential-0123456789"


async def test_one_access_line_per_call_without_key_or_prompt(start, send_chat, caplog):
    client = await start()
    key = (await admin_post(client, "/key/generate", {"key_alias": "billing-bot"}))["key"]
    caplog.set_level(logging.INFO, logger="gatehouse.access")
    caplog.clear()
    resp = await send_chat(client, PROMPT, headers=bearer(key))
    assert resp.status == 200
    [line] = [r for r in caplog.records if r.name == "gatehouse.access"]
    assert (line.method, line.route, line.status, line.model, line.key_alias) == \
        ("POST", "/v1/chat/completions", 200, "gpt-4o", "billing-bot")
    assert line.request_id == resp.headers["x-request-id"]
    assert line.duration_ms >= 0
    text = line.getMessage()
    assert "POST /v1/chat/completions 200" in text and "key=billing-bot" in text
    assert key not in text and PROMPT not in text


async def test_the_access_line_names_a_routes_pattern_not_its_path(start, caplog):
    client = await start()
    caplog.set_level(logging.INFO, logger="gatehouse.access")
    caplog.clear()
    await client.get("/v1/models/some-model", headers=ADMIN)
    [line] = [r for r in caplog.records if r.name == "gatehouse.access"]
    assert line.route == "/v1/models/{model_id}"


def write_config(tmp_path, **settings):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [
            {"model_name": "echo", "params": {"model": "mock/echo"}},
            # Nothing listens there: the call fails after the request was logged.
            {"model_name": "gone", "params": {
                "model": "openai/gpt-4o", "api_base": f"http://127.0.0.1:{free_port()}/v1",
                "api_key": UPSTREAM_KEY}}],
        **settings}))
    return path


def call(port, model, content=PROMPT):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=orjson.dumps({"model": model, "messages": [{"role": "user", "content": content}]}),
        headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers["x-request-id"]
    except urllib.error.HTTPError as err:
        return err.code, err.headers["x-request-id"]


@pytest.mark.parametrize("how", ["env", "config"])
def test_json_logs_make_every_line_json(tmp_path, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("JSON_LOGS", "True")
        path = write_config(tmp_path)
    else:
        path = write_config(tmp_path, litellm_settings={"json_logs": True})
    port, log = free_port(), tmp_path / "gateway.log"
    with serving(log, port, "--config", str(path), "--port", str(port), "--host", "127.0.0.1"):
        status, request_id = call(port, "echo")
        assert status == 200
        status, failed_id = call(port, "gone")
        assert status == 502
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "gatehouse.access"
              and line["route"] == "/v1/chat/completions"]
    assert [(a["status"], a["model"], a["request_id"]) for a in access] == [
        (200, "echo", request_id), (502, "gone", failed_id)]
    [upstream_error] = [line for line in lines if "upstream error" in line["message"]]
    assert upstream_error["request_id"] == failed_id
    assert PROMPT not in log.read_text()


def test_detailed_debug_shows_the_upstream_request_with_secrets_masked(tmp_path):
    path = write_config(tmp_path)
    port, log = free_port(), tmp_path / "gateway.log"
    with serving(log, port, "--config", str(path), "--port", str(port), "--host", "127.0.0.1",
                 "--detailed_debug"):
        status, request_id = call(port, "gone")
        assert status == 502
    text = log.read_text()
    [sent] = [line for line in text.splitlines() if "gatehouse.upstream" in line]
    assert "/v1/chat/completions" in sent and PROMPT in sent
    assert UPSTREAM_KEY not in text
    assert "'authorization': 'Bear****'" in sent
    assert f"(request {request_id})" in sent


def test_upstream_and_guardrail_failures_are_logged_once_with_the_request_id(tmp_path):
    path = write_config(tmp_path, guardrails=[{"guardrail_name": "lakera-guard", "params": {
        "guardrail": "lakera", "mode": "pre_call", "api_key": "lk-vendor-secret-0000",
        "api_base": f"http://127.0.0.1:{free_port()}"}}])
    port, log = free_port(), tmp_path / "gateway.log"
    with serving(log, port, "--config", str(path), "--port", str(port), "--host", "127.0.0.1"):
        status, upstream_id = call(port, "gone")
        assert status == 502
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=orjson.dumps({"model": "echo", "guardrails": ["lakera-guard"],
                               "messages": [{"role": "user", "content": "hi"}]}),
            headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        guard_id = refused.value.headers["x-request-id"]
    text = log.read_text()
    [upstream] = [line for line in text.splitlines() if "upstream error" in line]
    assert f"(request {upstream_id})" in upstream
    [guard] = [line for line in text.splitlines() if "lakera-guard" in line
               and "failed closed" in line]
    assert f"(request {guard_id})" in guard
    assert "lk-vendor-secret-0000" not in text
