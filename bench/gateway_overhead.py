"""What the gateway adds to a non-streaming chat completion: latency and throughput, measured
against the same upstream called directly, in the same run.

It starts a minimal upstream (``gateway_upstream.py``), one gateway routed to it with the
installed ``banned_keywords`` and ``hide-secrets`` guardrails on, and a load generator (``wrk``
when installed, else ``gateway_loadgen.py``). At each connection count it loads the upstream
directly and then through the gateway, for the same time, in rounds that alternate which goes
first, so a noisy neighbour on a shared machine hits both sides. It prints the medians over the
rounds, the gateway/direct ratios, the added p50 latency, and the targets with pass or fail.
Everything listens on 127.0.0.1 only and every process it starts is stopped when it ends.

    python bench/gateway_overhead.py                       # 3 rounds x 5 s at 1 and 16 conns
    python bench/gateway_overhead.py --duration 10 --connections 1 4 16 64
    python bench/gateway_overhead.py --no-guardrails       # the core alone
    python bench/gateway_overhead.py --profile prof.txt    # plus a py-spy profile of the gateway
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import yaml
from gatehouse.plugins import (
    CORE_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    LOAD_PLUGINS_ENV,
    PluginError,
    load_plugins,
)

HERE = Path(__file__).resolve().parent
MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
BANNED_KEYWORD_COUNT = 100
# The targets, for a 2-core machine and one gateway process.
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P50_CONNECTIONS = 1
TARGET_RPS = 1500.0
TARGET_RPS_CONNECTIONS = 16
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0

REQUEST_BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a concise assistant for a network engineering team."},
        {"role": "user", "content": "Summarise the main differences between TCP and UDP in two "
                                    "sentences, and say when I would pick each one."},
    ],
    "max_tokens": 128,
    "temperature": 0.2,
    "user": "bench-user-42",
}


# --- processes -------------------------------------------------------------------------------------


class Processes:
    """The servers this run started. Each gets its own session, so stopping its process group
    also stops whatever it forked (``gatehouse --workers N``) and nothing else."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
              stdout_pipe: bool = False) -> subprocess.Popen[bytes]:
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL,
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
            if proc.stdout is not None:
                proc.stdout.close()
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


def start_upstream(procs: Processes, workdir: Path) -> tuple[int, int]:
    """Returns the upstream's port and process id."""
    log = workdir / "upstream.log"
    proc = procs.start([sys.executable, str(HERE / "gateway_upstream.py")], log, stdout_pipe=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        raise BenchError(f"the upstream did not start:\n{_log_tail(log)}")
    return int(line.split()[1]), proc.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(procs: Processes, config: Path, port: int, workers: int,
                  load_plugins_env: str, workdir: Path) -> subprocess.Popen[bytes]:
    log = workdir / "gateway.log"
    env = {**os.environ, LOAD_PLUGINS_ENV: load_plugins_env}
    # `-m gatehouse.cli` is the `gatehouse` command of this very interpreter, whatever PATH says.
    proc = procs.start([sys.executable, "-m", "gatehouse.cli", "--config", str(config),
                        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                        "--log-level", "warning"], log, env=env)
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://127.0.0.1:{port}/health/readiness"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the gateway exited with code {proc.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if json.load(resp).get("status") == "healthy":
                    return proc
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the gateway was not ready within {READY_TIMEOUT_S:g} s:\n{_log_tail(log)}")


class BenchError(Exception):
    """The benchmark cannot go on; worded for the person running it."""


# --- guardrails ------------------------------------------------------------------------------------


@dataclass
class Guardrails:
    """The guardrail entries for the gateway config, the plugins that provide them, and what to
    tell the reader about what is on and what is not."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    entry_points: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_guardrails() -> Guardrails:
    """Configure whichever of ``banned_keywords`` and ``hide-secrets`` an installed plugin
    provides. Each plugin is loaded on its own, so one that fails to import (they are being
    written alongside this benchmark) costs only its own guardrail."""
    found = Guardrails()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None and ep.dist.name == CORE_DISTRIBUTION:
            continue
        try:
            plugins = load_plugins(load=[ep.name])
        except PluginError as exc:
            found.notes.append(f"plugin {ep.name!r} not used: {exc}")
            continue
        banned = plugins.guardrail_type("banned_keywords")
        if banned is not None and "banned_keywords" not in found.on:
            keywords_field = next((name for name in banned.obj.Params.model_fields
                                   if "keyword" in name), None)
            if keywords_field is None:
                found.notes.append(f"banned_keywords from {ep.name!r} not used: its params "
                                   f"have no keyword list field")
            else:
                found.entries.append({"guardrail_name": "banned_keywords", "params": {
                    "guardrail": banned.name, "mode": ["pre_call", "post_call"],
                    "default_on": True,
                    keywords_field: [f"competitor-{i:03d}" for i in range(BANNED_KEYWORD_COUNT)],
                }})
                found.on.append("banned_keywords")
                found.entry_points.append(ep.name)
        secrets = plugins.guardrail_type("hide-secrets")
        if secrets is not None and "hide-secrets" not in found.on:
            found.entries.append({"guardrail_name": "hide-secrets", "params": {
                "guardrail": secrets.name, "mode": ["pre_call"], "default_on": True}})
            found.on.append("hide-secrets")
            if ep.name not in found.entry_points:
                found.entry_points.append(ep.name)
    for wanted in ("banned_keywords", "hide-secrets"):
        if wanted not in found.on:
            found.notes.append(f"{wanted}: no installed plugin provides it; running without")
    return found


def describe(guardrails: Guardrails) -> str:
    parts = []
    for entry in guardrails.entries:
        params = entry["params"]
        sizes = [f"{len(v)} {k}" for k, v in params.items() if isinstance(v, list) and k != "mode"]
        parts.append(f"{entry['guardrail_name']} ({'+'.join(params['mode'])}"
                     f"{', ' + ', '.join(sizes) if sizes else ''})")
    return ", ".join(parts) or "none"


def write_config(workdir: Path, upstream_port: int, guardrails: Guardrails) -> Path:
    config = {
        "model_list": [{"model_name": MODEL, "params": {
            "model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": "sk-bench-not-a-secret"}}],
        "guardrails": guardrails.entries,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def check_reply(url: str, body: bytes) -> list[str]:
    """One request before any load: the reply must be a completion, so the benchmark never
    measures a fast stream of errors. Returns the guardrails the gateway says it applied."""
    request = urllib.request.Request(url, data=body,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            reply = json.load(resp)
            applied = resp.headers.get("x-gatehouse-applied-guardrails", "")
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{url} answered HTTP {exc.code}: {exc.read()[:500]!r}") from None
    if not reply.get("choices"):
        raise BenchError(f"{url} did not answer with a chat completion: {reply!r}")
    return [name for name in applied.split(",") if name]


# --- load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU the server on the measured path spent per request (the upstream for direct runs, the
    # gateway's processes for gateway runs). Less sensitive to a busy machine than wall time.
    cpu_us: float = math.nan

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class LoadGenerator(Protocol):
    name: str

    def run(self, url: str, connections: int, duration: float) -> Sample: ...


class Wrk:
    """wrk with a Lua script that posts the body and prints exact percentiles on one line."""

    def __init__(self, binary: str, body: bytes, workdir: Path):
        self.binary = binary
        self.script = workdir / "post.lua"
        # A Lua long bracket holds the JSON verbatim; the body never contains "]==]".
        self.script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [==[{body.decode()}]==]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            "function done(summary, latency, requests)\n"
            "  local e = summary.errors\n"
            '  io.write(string.format("BENCH %d %d %.1f %.1f %d\\n", summary.requests,\n'
            "    summary.duration, latency:percentile(50), latency:percentile(99),\n"
            "    e.connect + e.read + e.write + e.status + e.timeout))\n"
            "end\n")
        # `wrk -v` prints its version banner and exits non-zero.
        banner = subprocess.run([binary, "-v"], capture_output=True, text=True,
                                check=False).stdout.split()
        self.name = f"{' '.join(banner[:2]) or 'wrk'} (1 thread)"

    def run(self, url: str, connections: int, duration: float) -> Sample:
        # One thread: on two shared cores a second wrk thread only takes CPU from the servers,
        # and one thread drives far more requests per second than the gateway serves.
        out = subprocess.run(
            [self.binary, "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s",
             "-s", str(self.script), url],
            capture_output=True, text=True, timeout=duration + 60, check=True).stdout
        line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
        if line is None:
            raise BenchError(f"wrk printed no result:\n{out}")
        requests, micros, p50_us, p99_us, errors = line.split()[1:]
        return Sample(int(requests), int(micros) / 1e6, float(p50_us) / 1e3,
                      float(p99_us) / 1e3, int(errors))


class PythonLoad:
    """gateway_loadgen.py in its own process, so it does not share an interpreter with us."""

    name = "python aiohttp (gateway_loadgen.py; wrk not found)"

    def __init__(self, body: bytes, workdir: Path):
        self.body_file = workdir / "body.json"
        self.body_file.write_bytes(body)

    def run(self, url: str, connections: int, duration: float) -> Sample:
        out = subprocess.run(
            [sys.executable, str(HERE / "gateway_loadgen.py"), "--url", url,
             "--body-file", str(self.body_file), "--connections", str(connections),
             "--duration", str(duration)],
            capture_output=True, text=True, timeout=duration + 60, check=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        return Sample(int(data["requests"]), float(data["seconds"]), float(data["p50_ms"]),
                      float(data["p99_ms"]), int(data["errors"]))


def pick_load_generator(choice: str, body: bytes, workdir: Path) -> LoadGenerator:
    binary = shutil.which("wrk")
    if choice == "wrk" and binary is None:
        raise BenchError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    if choice != "python" and binary is not None:
        return Wrk(binary, body, workdir)
    loader = PythonLoad(body, workdir)
    if choice == "python":
        loader.name = "python aiohttp (gateway_loadgen.py, as asked)"
    return loader


# --- measuring and reporting -----------------------------------------------------------------------


@dataclass
class Cell:
    """All rounds at one connection count: direct and gateway samples, paired by round."""

    direct: list[Sample] = field(default_factory=list)
    gateway: list[Sample] = field(default_factory=list)

    def median(self, side: str, metric: str) -> float:
        return float(statistics.median(getattr(s, metric) for s in getattr(self, side)))

    def ratio(self, metric: str) -> float:
        # Per-round ratios: each pair ran back to back, so they share the machine's mood.
        return float(statistics.median(
            getattr(g, metric) / getattr(d, metric)
            for d, g in zip(self.direct, self.gateway) if getattr(d, metric)))

    def added_p50_ms(self) -> float:
        return statistics.median(g.p50_ms - d.p50_ms for d, g in zip(self.direct, self.gateway))


def measure(load: LoadGenerator, urls: dict[str, str], servers: dict[str, int],
            connections: Sequence[int], duration: float, warmup: float,
            rounds: int) -> dict[int, Cell]:
    """``servers`` maps each side to the process group whose CPU that side's figures charge."""
    if warmup > 0:
        for url in urls.values():
            load.run(url, max(connections), warmup)
    cells = {c: Cell() for c in connections}
    for round_no in range(rounds):
        for conns in connections:
            order = ["direct", "gateway"] if round_no % 2 == 0 else ["gateway", "direct"]
            for side in order:
                cpu_before = group_cpu_seconds(servers[side])
                sample = load.run(urls[side], conns, duration)
                cpu = group_cpu_seconds(servers[side]) - cpu_before
                sample = dataclasses.replace(sample, cpu_us=1e6 * cpu / max(sample.requests, 1))
                getattr(cells[conns], side).append(sample)
                print(f"  round {round_no + 1}/{rounds}  {conns:>3} conn  {side:<7}  "
                      f"{sample.rps:>9,.0f} req/s  p50 {sample.p50_ms:7.3f} ms  "
                      f"p99 {sample.p99_ms:7.3f} ms  cpu {sample.cpu_us:6.0f} us/req"
                      f"{f'  ERRORS {sample.errors}' if sample.errors else ''}", flush=True)
    return cells


def report(cells: dict[int, Cell], rounds: int, workers: int) -> None:
    print(f"\nmedians over {rounds} round(s); ratio = gateway / direct, paired by round")
    print("cpu us/req: CPU the upstream (direct) or the gateway (gateway) spent per request")
    print(f"{'conns':>5}  {'':<8} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'cpu us/req':>11}"
          f"  {'added p50':>10}")
    for conns, cell in cells.items():
        for side in ("direct", "gateway"):
            print(f"{conns:>5}  {side:<8} {cell.median(side, 'rps'):>10,.0f} "
                  f"{cell.median(side, 'p50_ms'):>9.3f} {cell.median(side, 'p99_ms'):>9.3f} "
                  f"{cell.median(side, 'cpu_us'):>11.0f}")
        print(f"{'':>5}  {'ratio':<8} {cell.ratio('rps'):>9.2f}x {cell.ratio('p50_ms'):>8.2f}x "
              f"{cell.ratio('p99_ms'):>8.2f}x {cell.ratio('cpu_us'):>10.2f}x"
              f"  {cell.added_p50_ms():>+7.3f} ms")
    errors = sum(s.errors for c in cells.values() for s in (*c.direct, *c.gateway))
    if errors:
        print(f"\nWARNING: {errors} failed requests (non-2xx or socket errors); figures are suspect")
    print("\ntargets (2-core machine, one gateway process, non-streaming chat)")
    if workers != 1:
        print(f"  (this run had {workers} gateway processes; the targets are for one)")
    one = cells.get(TARGET_ADDED_P50_CONNECTIONS)
    if one is None:
        print(f"  added p50 at {TARGET_ADDED_P50_CONNECTIONS} conn: not measured")
    else:
        added = one.added_p50_ms()
        ok = added <= TARGET_ADDED_P50_MS
        print(f"  added p50 at {TARGET_ADDED_P50_CONNECTIONS} conn <= {TARGET_ADDED_P50_MS:g} ms:"
              f"  {added:.3f} ms  {'PASS' if ok else 'FAIL'}")
    many = cells.get(TARGET_RPS_CONNECTIONS)
    if many is None:
        print(f"  gateway req/s at {TARGET_RPS_CONNECTIONS} conns: not measured")
    else:
        rps = many.median("gateway", "rps")
        ok = rps >= TARGET_RPS
        cpu_us = many.median("gateway", "cpu_us")
        print(f"  gateway req/s at {TARGET_RPS_CONNECTIONS} conns >= {TARGET_RPS:,.0f}:"
              f"  {rps:,.0f}  {'PASS' if ok else 'FAIL'}"
              f"  (at {cpu_us:.0f} us CPU/req one busy core would give "
              f"{1e6 / cpu_us:,.0f} req/s per process)")


def profile(load: LoadGenerator, gateway: subprocess.Popen[bytes], url: str, connections: int,
            duration: float, out: Path) -> None:
    """Sample the gateway with py-spy while it is under load, keep the folded stacks in ``out``
    and print where the samples fall."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    # --gil keeps only samples of the thread holding the GIL: the event loop at work, and not
    # helper threads (a database executor) that py-spy would count while they wait on a queue.
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(gateway.pid), "--subprocesses", "--gil", "--rate", "200",
         "--duration", f"{duration:g}", "--format", "raw", "--output", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # py-spy attaches before the load starts
        sample = load.run(url, connections, duration)
        _, err = spy.communicate(timeout=duration + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    print(f"\nprofile: {sample.rps:,.0f} req/s under py-spy at {connections} conns; "
          f"folded stacks in {out}")
    print_profile(out)


def _folded(path: Path) -> Iterator[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def print_profile(path: Path, top: int = 20) -> None:
    total = upstream_client = 0
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in _folded(path):
        total += count
        own[frames[-1]] += count
        # Per function, not per line, so a function's lines add up; the CLI frames that hold
        # the event loop are everywhere and say nothing.
        for function in {re.sub(r":\d+\)$", ")", f) for f in frames
                         if "gatehouse/" in f and "gatehouse/cli.py" not in f}:
            inclusive[function] += count
        if any("aiohttp/client" in f or "aiohttp/connector" in f for f in frames):
            upstream_client += count
    if not total:
        print("  (no samples)")
        return
    print(f"  {total} samples; {100 * upstream_client / total:.1f}% in aiohttp's client "
          f"(the upstream leg)")
    print("  self time by line:")
    for frame, count in own.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame}")
    print("  inclusive time of gatehouse functions:")
    for frame, count in inclusive.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {frame}")


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Gateway overhead vs a direct upstream: req/s, p50, p99 and their ratios.")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of load per measurement (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of unmeasured load per side before measuring (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="direct/gateway pairs per connection count (default 3)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16],
                        help="connection counts to measure (default: 1 16)")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway processes (default 1, as the targets assume)")
    parser.add_argument("--no-guardrails", action="store_true",
                        help="run the gateway with no guardrail plugins at all")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk when installed, else python)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="afterwards, profile the gateway with py-spy under load at the "
                             "highest connection count and write folded stacks to FILE")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.rounds < 1 or args.workers < 1 or args.warmup < 0:
        parser.error("--duration and --rounds and --workers must be positive, --warmup >= 0")
    if any(c < 1 for c in args.connections):
        parser.error("--connections must be positive")
    args.connections = sorted(set(args.connections))
    return args


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> None:
    body = json.dumps(REQUEST_BODY, separators=(",", ":")).encode()
    guardrails = Guardrails() if args.no_guardrails else find_guardrails()
    load = pick_load_generator(args.loadgen, body, workdir)

    upstream_port, upstream_pid = start_upstream(procs, workdir)
    config = write_config(workdir, upstream_port, guardrails)
    gateway_port = free_port()
    # Only the plugins configured here load, so another installed plugin's global callbacks
    # cannot change what is measured.
    gateway = start_gateway(procs, config, gateway_port, args.workers,
                            ",".join(guardrails.entry_points), workdir)
    urls = {"direct": f"http://127.0.0.1:{upstream_port}{CHAT_PATH}",
            "gateway": f"http://127.0.0.1:{gateway_port}{CHAT_PATH}"}
    check_reply(urls["direct"], body)
    applied = check_reply(urls["gateway"], body)

    # The load average says how much of the machine other work held when this ran.
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}")
    print(f"load generator: {load.name}")
    print(f"gateway: {args.workers} process(es); upstream: aiohttp, one process")
    print(f"guardrails on: {describe(guardrails)}"
          f"{' (--no-guardrails)' if args.no_guardrails else ''}; "
          f"applied per the reply header: {', '.join(applied) or 'none'}")
    for note in guardrails.notes:
        print(f"  note: {note}")
    print(f"{args.rounds} round(s) x {args.duration:g} s per side per connection count, "
          f"{args.warmup:g} s warm-up\n")

    # Each server leads its own process group (see Processes), so its pid is the group id.
    servers = {"direct": upstream_pid, "gateway": gateway.pid}
    cells = measure(load, urls, servers, args.connections, args.duration, args.warmup,
                    args.rounds)
    report(cells, args.rounds, args.workers)
    if args.profile is not None:
        profile(load, gateway, urls["gateway"], max(args.connections), args.duration,
                args.profile.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C does, so the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    procs = Processes()
    try:
        with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as tmp:
            try:
                run(args, procs, Path(tmp))
            finally:
                procs.stop_all()
    except BenchError as exc:
        print(f"gateway_overhead: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"gateway_overhead: {exc.cmd[0]} failed ({exc.returncode}):\n{exc.stderr}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    # A benchmark reports; missing a target is in the output, not in the exit code.
    return 0


if __name__ == "__main__":
    sys.exit(main())
