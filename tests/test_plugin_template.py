"""The plugin template, used the way its README says: generate a plugin, install it beside the
core, run its own tests, then run a gateway whose config uses the new type."""

import os
import random
import re
import shutil
import string
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from cookiecutter.main import cookiecutter

from test_cli import free_port, wait_ready
from test_packaging import CORE, built_metadata, requirements

ROOT = Path(__file__).parent.parent
TEMPLATE = ROOT / "plugin-template"
# A name of its own per run: test runs sharing one environment must not uninstall each
# other's plugin.
SUFFIX = "".join(random.choices(string.ascii_lowercase, k=6))
TYPE = f"acme_{SUFFIX}"
DIST = f"gatehouse-acme-{SUFFIX}"


def run(*args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                                extra_context={"plugin_name": f"acme {SUFFIX}"}))
    installed = run(sys.executable, "-m", "pip", "install", "-q", "-e", str(project))
    assert installed.returncode == 0, installed.stderr
    yield project
    run(sys.executable, "-m", "pip", "uninstall", "-y", "-q", DIST)


def test_a_generated_plugin_requires_the_core_by_its_distribution_name(generated, tmp_path):
    names = {r.name for r in requirements(built_metadata(generated, tmp_path))}
    assert CORE in names and "gatehouse" not in names


def test_generates_a_complete_package(generated):
    assert generated.name == DIST
    files = {p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file()}
    package = f"gatehouse_{TYPE}"
    assert {"pyproject.toml", "README.md", f"src/{package}/__init__.py",
            f"src/{package}/guardrail.py", "tests/test_guardrail.py"} <= files
    assert f"guardrail: {TYPE}" in (generated / "README.md").read_text()
    assert "{{" not in "".join((generated / f).read_text() for f in files)


def test_its_own_tests_pass_straight_after_generation(generated):
    result = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=generated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_gatehouse_plugins_lists_it(generated):
    result = run(sys.executable, "-m", "gatehouse.cli", "plugins", "--json")
    plugin = next(p for p in orjson.loads(result.stdout)
                  if p["distribution"] == DIST)
    assert [t["name"] for t in plugin["guardrail_types"]] == [TYPE]


def test_a_gateway_using_the_new_type_blocks_and_rewrites(generated, tmp_path):
    upstream_reply = "Mail ada@example.com for details."
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: m\n"
        f"    params: {{model: mock/m, mock_response: {upstream_reply!r}}}\n"
        "guardrails:\n"
        "  - guardrail_name: acme\n"
        f"    params: {{guardrail: {TYPE}, mode: [pre_call, post_call], default_on: true,\n"
        "             blocked_terms: [falcon]}\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gatehouse.cli", "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GATEHOUSE_LOAD_PLUGINS": DIST})
    try:
        wait_ready(port, proc)

        def chat(text):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=orjson.dumps({"model": "m", "messages": [{"role": "user",
                                                               "content": text}]}),
                headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    return resp.status, orjson.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, orjson.loads(err.read())

        status, body = chat("what is falcon?")
        assert status == 400
        assert body["error"]["details"]["error"] == "Blocked term: falcon"
        status, body = chat("who do I write to?")
        assert status == 200
        assert body["choices"][0]["message"]["content"] == "Mail [EMAIL] for details."
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_writing_plugins_quick_start_runs_as_written(tmp_path):
    """docs/writing-plugins.md's first commands, run as a reader pastes them: in a copy of the
    repository, with a new virtualenv active, so that only what they install is there."""
    doc = (ROOT / "docs" / "writing-plugins.md").read_text()
    commands = re.search(r"```bash\n(.*?)```", doc, re.S).group(1)
    checkout = tmp_path / "gatehouse"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.db", "__pycache__", "*.egg-info", "build"))
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", str(venv))
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "VIRTUAL_ENV": str(venv),
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    result = run("bash", "-c", commands, cwd=checkout, env=env, stdin=subprocess.DEVNULL)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert re.search(r"\d+ passed", result.stdout) and " failed" not in result.stdout, out[-5000:]
    assert "gatehouse-no-shouting 0.1.0  (plugin no_shouting)" in result.stdout, out[-5000:]
