"""Load for the overhead bench: the chat completion it posts, and the two load generators that
post it, ``wrk`` and, where wrk is missing, ``gateway_loadgen.py``, behind one interface that
loads one URL at a number of connections for a time and returns what it saw.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from benchkit import BenchError

HERE = Path(__file__).resolve().parent
MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
REQUEST = {
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


def request_body(stream: bool) -> bytes:
    """The chat completion the bench posts, compact as a client sends it (the upstream looks
    for ``"stream":true``)."""
    return json.dumps({**REQUEST, "stream": True} if stream else REQUEST,
                      separators=(",", ":")).encode()


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

    def __init__(self, binary: str, body: bytes, workdir: Path, headers: dict[str, str]):
        self.binary = binary
        self.script = workdir / "post.lua"
        # A Lua long bracket holds the JSON verbatim; the body never contains "]==]".
        self.script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = [==[{body.decode()}]==]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in headers.items())
            + "function done(summary, latency, requests)\n"
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

    def __init__(self, body: bytes, workdir: Path, headers: dict[str, str]):
        self.body_file = workdir / "body.json"
        self.body_file.write_bytes(body)
        self.headers = [f"--header={name}:{value}" for name, value in headers.items()]

    def run(self, url: str, connections: int, duration: float) -> Sample:
        out = subprocess.run(
            [sys.executable, str(HERE / "gateway_loadgen.py"), "--url", url,
             "--body-file", str(self.body_file), "--connections", str(connections),
             "--duration", str(duration), *self.headers],
            capture_output=True, text=True, timeout=duration + 60, check=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        return Sample(int(data["requests"]), float(data["seconds"]), float(data["p50_ms"]),
                      float(data["p99_ms"]), int(data["errors"]))


def pick_load_generator(choice: str, body: bytes, workdir: Path,
                        headers: dict[str, str]) -> LoadGenerator:
    """``headers`` go with every request, to both sides (a key the upstream ignores)."""
    binary = shutil.which("wrk")
    if choice == "wrk" and binary is None:
        raise BenchError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    if choice != "python" and binary is not None:
        return Wrk(binary, body, workdir, headers)
    loader = PythonLoad(body, workdir, headers)
    if choice == "python":
        loader.name = "python aiohttp (gateway_loadgen.py, as asked)"
    return loader
