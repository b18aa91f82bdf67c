"""The ``gatehouse`` command, run as a user runs it."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from gatehouse.testing import check_config

EXAMPLE = Path(__file__).parent.parent / "examples" / "config.yaml"
STRONG_KEY = "sk-" + "4b1f0c8e2d9a7f6e" * 3


def gatehouse(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "gatehouse.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=orjson.dumps(body),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return orjson.loads(resp.read())


def wait_ready(port, proc):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/readiness", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gateway did not become ready")


def test_check_config_accepts_the_example():
    result = gatehouse("check-config", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("text,needle", [
    ("model_list: [{model_name: m, params: {model: nope}}]", "model_list[0].params.model"),
    ("guardrails: [{guardrail_name: g, params: {guardrail: not-installed}}]",
     "unknown guardrail type 'not-installed'"),
    ("model_list: [\n bad", "not valid YAML"),
])
def test_bad_config_exits_non_zero_without_traceback(tmp_path, text, needle):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    for args in (["--config", str(path)], ["check-config", "--config", str(path)]):
        result = gatehouse(*args)
        assert result.returncode == 2
        assert needle in result.stderr
        assert str(path) in result.stderr or "not-installed" in result.stderr
        assert "Traceback" not in result.stderr


def test_missing_config_file():
    result = gatehouse("--config", "does-not-exist.yaml")
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serves_the_example_offline_and_stops_cleanly(workers):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatehouse.cli", "--config", str(EXAMPLE), "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        for _ in range(4):
            reply = post(port, "/v1/chat/completions", {
                "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            assert reply["choices"][0]["message"]["content"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_check_config_accepts_the_keys_example(tmp_path):
    result = gatehouse("check-config", "--config", str(EXAMPLE.parent / "keys.yaml"),
                       env={"GATEHOUSE_MASTER_KEY": "sk-" + "3" * 40})
    assert result.returncode == 0, result.stderr


def test_weak_master_key_is_refused_unless_allowed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("general_settings: {master_key: sk-1234}\n")
    result = gatehouse("check-config", "--config", str(path))
    assert result.returncode == 2
    assert "weak master key" in result.stderr and "sk-1234" not in result.stderr
    path.write_text("general_settings: {master_key: sk-1234, allow_weak_master_key: true,\n"
                    f"                   database_path: {tmp_path / 'g.db'}}}\n")
    assert gatehouse("check-config", "--config", str(path)).returncode == 0


# A file with one mistake of each kind, LiteLLM's names throughout.
SEVERAL_MISTAKES = f"""\
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: mock/gpt-4o-mini}}
  - model_name: claude
    litellm_params: {{model: bedrock/claude}}
guardrails:
  - guardrail_name: no-codewords
    litellm_params:
      guardrail: banned_keywords
      banned_keyword_list: [nightingale]
  - guardrail_name: injection
    litellm_params: {{guardrail: lakera_v3}}
general_settings:
  master_kye: {STRONG_KEY}
  alerting: [slack]
litellm_settings:
  callbacks: [banned_keywords, presidio]
  drop_params: true
"""


def test_check_config_reports_every_mistake_at_once_and_exits_2(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(SEVERAL_MISTAKES)
    result = check_config(path, load="gatehouse-banned-keywords")
    assert result.returncode == 2
    assert "OK" not in result.stdout and "Traceback" not in result.stderr
    assert STRONG_KEY not in result.stderr
    errors = result.stderr[result.stderr.index("gatehouse: error:"):].splitlines()
    assert errors[0] == f"gatehouse: error: {path}: 7 problems:"
    assert errors[1:] == [
        "  general_settings.master_kye: unknown setting; did you mean `master_key`?",
        "  guardrails[0].litellm_params.banned_keywords_list: Field required",
        "  guardrails[0].litellm_params.banned_keyword_list: unknown key; did you mean "
        "`banned_keywords_list`?",
        "  guardrails[1].litellm_params.guardrail: unknown guardrail type 'lakera_v3': no loaded "
        "plugin offers it; installed but not loaded (GATEHOUSE_LOAD_PLUGINS does not name "
        "them): gatehouse-aporia, gatehouse-lakera, gatehouse-llamaguard, gatehouse-secrets; "
        "loaded types: banned_keywords",
        "  litellm_settings.banned_keywords_list: Field required (read by callback "
        "'banned_keywords' at litellm_settings.callbacks[0])",
        "  litellm_settings.callbacks[1]: unknown callback 'presidio': no loaded plugin offers "
        "it; installed but not loaded (GATEHOUSE_LOAD_PLUGINS does not name them): "
        "gatehouse-aporia, gatehouse-lakera, gatehouse-llamaguard, gatehouse-secrets; accepted "
        "callbacks: banned_keywords, blocked_user_check, or a guardrail_name from guardrails:",
        "  model_list[1].litellm_params.model: unknown provider 'bedrock' in 'bedrock/claude'; "
        "installed providers: mock, openai",
    ]
    # What is ignored is said, not refused.
    assert (f"WARNING gatehouse.config: {path}: general_settings.alerting: gatehouse does not "
            f"implement LiteLLM's alerting; ignored") in result.stderr
    assert (f"WARNING gatehouse.config: {path}: litellm_settings.drop_params: gatehouse does "
            f"not implement LiteLLM's drop_params; ignored") in result.stderr


def test_a_misspelt_master_key_never_serves(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"model_list: [{{model_name: m, params: {{model: mock/m}}}}]\n"
                    f"general_settings: {{master_kye: {STRONG_KEY}}}\n")
    for args in (["--config", str(path), "--port", str(free_port())],
                 ["check-config", "--config", str(path)]):
        result = gatehouse(*args)
        assert result.returncode == 2
        assert (f"gatehouse: error: {path}: general_settings.master_kye: unknown setting; "
                f"did you mean `master_key`?") in result.stderr
        assert STRONG_KEY not in result.stderr
