"""The overhead benchmark's fallback load generator, used when ``wrk`` is not installed.

Each of ``--connections`` workers sends the same POST again and again over its own keep-alive
connection (closed loop, like wrk) until ``--duration`` seconds pass or ``--max-requests`` are
sent, then one JSON line goes to stdout:
``{"requests", "seconds", "p50_ms", "p99_ms", "errors"}``. Latencies are measured from just before
the request is written to after the whole body is read.

It is slower than wrk -- at high connection counts the generator itself can be the limit, which
is why the benchmark runs it in its own process and reports ratios against the direct baseline.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from benchkit import arguments, count, positive, run_async


async def _worker(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
                  deadline: float, budget: list[int], latencies: list[int],
                  errors: list[int]) -> None:
    while budget[0] > 0 and time.perf_counter() < deadline:
        budget[0] -= 1
        start = time.perf_counter_ns()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok = resp.status < 400
        except aiohttp.ClientError:
            ok = False
        latencies.append(time.perf_counter_ns() - start)
        if not ok:
            errors[0] += 1


async def run(url: str, body: bytes, headers: dict[str, str], connections: int,
              duration: float, max_requests: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    latencies: list[int] = []
    errors = [0]
    # A shared countdown rather than a per-worker quota, so a slow connection cannot leave the
    # others idle before the time is up.
    budget = [max_requests]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(_worker(session, url, body, headers, deadline, budget, latencies, errors)
                               for _ in range(connections)))
        seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "p50_ms": _percentile(latencies, 50) / 1e6,
        "p99_ms": _percentile(latencies, 99) / 1e6,
        "errors": errors[0],
    }


def _percentile(ordered: list[int], pct: float) -> float:
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))])


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--connections", type=count, default=1)
    parser.add_argument("--duration", type=positive, default=5.0)
    parser.add_argument("--max-requests", type=count, default=2_000_000)
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                        help="a header sent with every request (repeatable)")
    args = parser.parse_args()
    body = args.body_file.read_bytes()
    headers = {"content-type": "application/json",
               **dict(h.split(":", 1) for h in args.header)}
    result = run_async(run(args.url, body, headers, args.connections, args.duration,
                           args.max_requests))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
