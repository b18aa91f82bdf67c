"""``gateway_overhead.py --profile``: py-spy samples the gateway while it is under load, and the
folded stacks it writes are summed up by line and by gatehouse function.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from benchkit import BenchError
from gateway_load import LoadGenerator


def profile(load: LoadGenerator, gateway_pid: int, url: str, connections: int,
            duration: float, out: Path) -> None:
    """Sample the gateway with py-spy while it is under load, keep the folded stacks in ``out``
    and print where the samples fall."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    # --gil keeps only samples of the thread holding the GIL: the event loop at work, and not
    # helper threads (a database executor) that py-spy would count while they wait on a queue.
    spy = subprocess.Popen(
        [py_spy, "record", "--pid", str(gateway_pid), "--subprocesses", "--gil", "--rate", "200",
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
