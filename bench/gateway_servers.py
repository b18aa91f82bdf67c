"""The servers the overhead bench measures: the upstream (``gateway_upstream.py``) and the gateway,
each started on 127.0.0.1 in its own process group, checked to answer with a chat completion,
charged the CPU time its processes spend, and stopped with whatever it forked.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from benchkit import BenchError

HERE = Path(__file__).resolve().parent
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class Processes:
    """The servers this run started, stopped when the ``with`` block ends, however it ends. Each
    gets its own session, so stopping its process group also stops whatever it forked
    (``gatehouse --workers N``) and nothing else."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()

    def start(self, argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
              stdout_pipe: bool = False, stdin_pipe: bool = False) -> subprocess.Popen[bytes]:
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else log_file, stderr=log_file,
                env=env, start_new_session=True)
        self._started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._started):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in reversed(self._started):
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Forked workers may outlive their parent; the group signal reaches them too.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        self._started.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def group_cpu_seconds(pgid: int) -> float:
    """User plus system CPU of every live process in a process group, from /proc (Linux);
    NaN where /proc is missing."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return math.nan
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone since the listing
        # Fields after the command name, which is in parentheses and may hold spaces.
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def expect_line(proc: subprocess.Popen[bytes], prefix: str, log: Path, failed: str,
                timeout: float = READY_TIMEOUT_S) -> str:
    """The next line a process started with ``stdout_pipe`` prints, after ``prefix``; when it
    prints something else, or nothing within ``timeout``, ``failed`` and its log's tail."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith(prefix):
        raise BenchError(f"{failed}:\n{line}{_log_tail(log)}")
    return line[len(prefix):].strip()


def start_upstream(procs: Processes, workdir: Path) -> tuple[int, int]:
    """Returns the upstream's port and process id."""
    log = workdir / "upstream.log"
    proc = procs.start([sys.executable, str(HERE / "gateway_upstream.py")], log, stdout_pipe=True)
    return int(expect_line(proc, "PORT ", log, "the upstream did not start")), proc.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(procs: Processes, config: Path, port: int, workers: int,
                  env: Mapping[str, str], workdir: Path, log_name: str = "gateway.log"
                  ) -> subprocess.Popen[bytes]:
    """``env`` is added to this process's environment for the gateway."""
    log = workdir / log_name
    # `-m gatehouse.cli` is the `gatehouse` command of this very interpreter, whatever PATH says.
    proc = procs.start([sys.executable, "-m", "gatehouse.cli", "--config", str(config),
                        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                        "--log-level", "warning"], log, env={**os.environ, **env})
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://127.0.0.1:{port}/health/readiness"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the gateway exited with code {proc.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                # With a database (--virtual-key) LiteLLM's readiness says "connected".
                if json.load(resp).get("status") in ("healthy", "connected"):
                    return proc
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the gateway was not ready within {READY_TIMEOUT_S:g} s:\n{_log_tail(log)}")


def check_reply(url: str, body: bytes, headers: Mapping[str, str]) -> list[str]:
    """One request before any load: the reply must be a completion (or, streamed, a stream of
    chunks ending in ``[DONE]``), so the bench never measures a fast stream of errors. Returns
    the guardrails the gateway says it applied."""
    request = urllib.request.Request(url, data=body,
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            applied = resp.headers.get("x-gatehouse-applied-guardrails", "")
            streamed = resp.headers.get_content_type() == "text/event-stream"
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{url} answered HTTP {exc.code}: {exc.read()[:500]!r}") from None
    events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    if streamed:
        chunks = [json.loads(event) for event in events[:-1]]
        ok = events[-1:] == [b"[DONE]"] and any(chunk.get("choices") for chunk in chunks)
    else:
        ok = bool(json.loads(raw).get("choices"))
    if not ok:
        raise BenchError(f"{url} did not answer with a chat completion: {raw[:500]!r}")
    return [name for name in applied.split(",") if name]


def serve_bench(name: str, run: Callable[[Any, Processes, Path], None], args: Any) -> int:
    """A process-driving bench's main: ``run(args, procs, tmp)`` with its processes stopped
    on the way out however it ends (SIGTERM unwinds as Ctrl-C does), failures printed as one
    line. A benchmark reports; a missed target is in its output, not in the exit code."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp, Processes() as procs:
            run(args, procs, Path(tmp))
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"{name}: {exc.cmd[0]} failed ({exc.returncode}):\n{exc.stderr}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
