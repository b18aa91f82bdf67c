"""The ``gatehouse`` command, run as a user runs it."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import entry_points
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


def post(port, path, body, key=None):
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=orjson.dumps(body),
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return orjson.loads(resp.read())


def wait_ready(port, proc):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "it exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health/readiness", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gateway did not become ready")


@contextlib.contextmanager
def serving(log, port, *args):
    """The gateway run with ``args``, its stderr going to the file ``log``, once it answers on
    ``port``; on the way out it is stopped with SIGTERM and must exit 0 promptly."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "gatehouse.cli", *args],
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_ready(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def wait_for_log(log, pattern, count=1):
    """The first ``count`` matches of ``pattern`` in the file ``log``, once there are as many."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text())
        if len(found) >= count:
            return found[:count]
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not {count} times in the log:\n{log.read_text()}")


def chat(port):
    reply = post(port, "/v1/chat/completions", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    return reply["choices"][0]["message"]["content"]


def test_check_config_accepts_the_example():
    result = gatehouse("check-config", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("text,needle", [
    ("model_list: [{model_name: m, params: {model: 'nope/'}}]", "model_list[0].params.model"),
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
def test_serves_the_example_offline_and_stops_cleanly(tmp_path, workers):
    port = free_port()
    with serving(tmp_path / "log", port, "--config", str(EXAMPLE), "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(workers)):
        for _ in range(4):
            assert chat(port)


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


def test_version_prints_the_installed_distribution():
    from importlib.metadata import version

    from gatehouse.plugins import CORE_DISTRIBUTION
    result = gatehouse("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [CORE_DISTRIBUTION, version(CORE_DISTRIBUTION)]


def test_python_m_gatehouse_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "gatehouse", "check-config", "-c", str(EXAMPLE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{EXAMPLE}: OK" in result.stdout


@pytest.mark.parametrize("args", [
    ["--config", "{config}", "check-config"],
    ["-c", "{config}", "check-config"],
    ["check-config", "--config", "{config}"],
    ["--config", "does-not-exist.yaml", "check-config", "--config", "{config}"],
])
def test_options_work_before_and_after_the_subcommand(tmp_path, args):
    # Run where ./config.yaml is not the file named, so a default read instead would show.
    (tmp_path / "config.yaml").write_text("model_list: [\n bad")
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse.cli", *(a.format(config=EXAMPLE) for a in args)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{EXAMPLE}: OK" in result.stdout


def test_log_level_given_before_the_subcommand_is_kept():
    result = gatehouse("--log-level", "debug", "check-config", "-c", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert " DEBUG " in result.stderr


@pytest.mark.parametrize("flags,level", [
    (["--detailed_debug"], "DEBUG"),
    # --debug is LiteLLM's "info logs".
    (["--log-level", "warning", "--debug"], "INFO"),
    (["--debug", "--log-level", "warning"], "WARNING"),
    (["--debug", "run", "--detailed_debug"], "DEBUG"),
])
def test_litellm_debug_flags_set_the_log_level(tmp_path, flags, level):
    port = free_port()
    with serving(tmp_path / "log", port, *flags, "--config", str(EXAMPLE), "--host",
                 "127.0.0.1", "--port", str(port)):
        assert chat(port)
    log = (tmp_path / "log").read_text()
    shown = {name for name in ("DEBUG", "INFO") if f" {name} " in log}
    assert shown == {"DEBUG": {"DEBUG", "INFO"}, "INFO": {"INFO"}, "WARNING": set()}[level]


@pytest.mark.parametrize("where", ["before", "after"])
def test_run_takes_its_options_either_side_of_the_subcommand(tmp_path, where):
    port = free_port()
    options = ["--config", str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port),
               "--num_workers", "2"]
    args = [*options, "run"] if where == "before" else ["run", *options]
    with serving(tmp_path / "log", port, *args):
        assert chat(port)
        # One start-up line per worker (the second may still be starting when the first
        # answers).
        wait_for_log(tmp_path / "log", ": 2 models, guardrails:", count=2)
    assert (tmp_path / "log").read_text().count(": 2 models, guardrails:") == 2


def test_check_config_writes_no_files(tmp_path):
    # The default database is a SQLite file beside the config; check-config must not create
    # it, nor byte code for a guardrail class imported from beside the config.
    (tmp_path / "my_guard.py").write_text(
        "from gatehouse import Guardrail, hookimpl\n\n"
        "class Mine(Guardrail):\n    @hookimpl\n    def pre_call(self, call):\n        pass\n")
    (tmp_path / "config.yaml").write_text(
        "model_list: [{model_name: m, params: {model: mock/m}}]\n"
        "guardrails: [{guardrail_name: g, params: {guardrail: 'my_guard:Mine',"
        " mode: pre_call}}]\n"
        "general_settings: {master_key: sk-" + "7" * 40 + "}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    # As a user's shell has it: Python writes byte code.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-m", "gatehouse.cli", "check-config", "--config",
         str(tmp_path / "config.yaml")], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_check_config_still_reports_a_database_it_could_not_create(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "general_settings: {master_key: sk-" + "7" * 40 + ",\n"
        "                   database_path: config.yaml/gatehouse.db}\n")
    result = gatehouse("check-config", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 2
    assert "cannot open the database" in result.stderr and "config.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_reaches_postgres_without_migrating_it(tmp_path, postgres_url):
    import psycopg
    config = tmp_path / "config.yaml"
    settings = "general_settings: {master_key: sk-" + "7" * 40 + ", database_url: %s}\n"
    config.write_text(settings % postgres_url)
    result = gatehouse("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT tablename FROM pg_tables "
                            "WHERE schemaname = 'public'").fetchall() == []
    config.write_text(settings % f"postgresql://postgres@127.0.0.1:{free_port()}/gatehouse")
    result = gatehouse("check-config", "--config", str(config))
    assert result.returncode == 2
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


def test_a_worker_that_dies_is_replaced_and_named_in_the_log(tmp_path):
    log, port = tmp_path / "log", free_port()
    started = r"INFO gatehouse: worker (\d+) started"
    listening = "Running on http://127.0.0.1"
    with serving(log, port, "--config", str(EXAMPLE), "--host", "127.0.0.1", "--port",
                 str(port), "--workers", "2"):
        first, second = map(int, wait_for_log(log, started, 2))
        wait_for_log(log, listening, 2)
        os.kill(first, signal.SIGKILL)
        wait_for_log(log, rf"WARNING gatehouse: worker {first} exited with code -9 "
                          r"\(killed by SIGKILL\); starting a new one")
        wait_for_log(log, started, 3)
        wait_for_log(log, listening, 3)
        # With the other first worker gone too, the replacement is the one answering.
        os.kill(second, signal.SIGKILL)
        wait_for_log(log, rf"WARNING gatehouse: worker {second} exited")
        for _ in range(4):
            assert chat(port)
    assert "SIGTERM received; stopping the workers" in log.read_text()
    # Every worker stopped with the supervisor: none is left holding the port.
    for pid in map(int, re.findall(started, log.read_text())):
        assert not Path(f"/proc/{pid}").exists(), pid


def test_workers_failing_at_start_up_make_it_give_up_not_loop(tmp_path):
    with socket.socket() as taken:  # without SO_REUSEPORT: every worker's bind fails
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        begun = time.monotonic()
        result = gatehouse("--config", str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port),
                           "--workers", "2")
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - begun < 30
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "starting a new one in" in result.stderr  # backed off before retrying
    assert "workers keep exiting" in result.stderr and "giving up" in result.stderr
    assert result.stderr.count("cannot listen") <= 5
    assert "Traceback" not in result.stderr


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
    # Every plugin distribution installed here, less the core and the one loaded.
    left_out = ", ".join(sorted({ep.dist.name for ep in entry_points(group="gatehouse")}
                                - {"gatehouse-proxy", "gatehouse-banned-keywords"}))
    assert errors[0] == f"gatehouse: error: {path}: 7 problems:"
    assert errors[1:] == [
        "  general_settings.master_kye: unknown setting; did you mean `master_key`?",
        "  guardrails[0].litellm_params.banned_keywords_list: Field required",
        "  guardrails[0].litellm_params.banned_keyword_list: unknown key; did you mean "
        "`banned_keywords_list`?",
        "  guardrails[1].litellm_params.guardrail: unknown guardrail type 'lakera_v3': no loaded "
        "plugin offers it; installed but not loaded (GATEHOUSE_LOAD_PLUGINS does not name "
        f"them): {left_out}; loaded types: banned_keywords",
        "  litellm_settings.banned_keywords_list: Field required (read by callback "
        "'banned_keywords' at litellm_settings.callbacks[0])",
        "  litellm_settings.callbacks[1]: unknown callback 'presidio': no loaded plugin offers "
        f"it; installed but not loaded (GATEHOUSE_LOAD_PLUGINS does not name them): {left_out}; "
        "accepted callbacks: banned_keywords, blocked_user_check, or a guardrail_name from guardrails:",
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


async def test_sigterm_lets_a_call_in_flight_finish(tmp_path, fake_upstream):
    """Stopping drains: a call the upstream is still answering gets its reply, then the
    gateway exits 0."""
    import asyncio

    import aiohttp

    fake_upstream.delay = 1.0
    path = tmp_path / "config.yaml"
    path.write_text(orjson.dumps({"model_list": [fake_upstream.model_entry("gpt-4o")]}).decode())
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatehouse.cli", "--config", str(path), "--host", "127.0.0.1",
        "--port", str(port), stderr=asyncio.subprocess.PIPE)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for _ in range(300):
            try:
                async with session.get("/health/readiness") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        calling = asyncio.ensure_future(session.post("/v1/chat/completions", json={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        await asyncio.wait_for(fake_upstream.request_seen.wait(), 10)
        proc.send_signal(signal.SIGTERM)
        resp = await asyncio.wait_for(calling, 10)
        assert resp.status == 200
        assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
