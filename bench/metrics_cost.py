"""What counting a call for Prometheus costs, as a share of the CPU the whole call costs the
gateway, both measured in the same run.

Comparing a gateway with ``callbacks: ["prometheus"]`` against one without
(``gateway_overhead.py --callbacks prometheus``) measures a few percent as the difference of two
noisy figures; on a shared machine those move more than that between runs. This bench measures
the two parts apart instead, in interleaved rounds, both as CPU time:

* counting, in one process (``metrics_counting.py``): a real call is made through an in-process
  gateway with ``prometheus`` on, and what it handed the call log is shown to the metrics again
  and again: ``Metrics.observe`` alone, and what counting adds to the call log (a call log with
  the metrics as observer, minus the same without);
* the call: a gateway without callbacks, served by its own process on 127.0.0.1 in front of the
  bench upstream (``gateway_upstream.py``), under load (``wrk`` or ``gateway_loadgen.py``), its
  process CPU per request.

It prints each figure's best round and median round, counting as a percentage of a call, and
the ratio of a call with counting to one without. ``--baseline-ref`` measures an older commit's
counting too, in its own process, in the same rounds.

    python bench/metrics_cost.py                           # 7 rounds of 3,000 calls and 4 s
    python bench/metrics_cost.py --baseline-ref 1055439    # beside the commit before cells
    python bench/metrics_cost.py --rounds 11 --calls 5000 --connections 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchkit import BenchError, Table, arguments, count, machine, positive
from gateway_config import find_guardrails, write_config
from gateway_load import CHAT_PATH, MODEL, pick_load_generator, request_body
from gateway_report import print_sample
from gateway_servers import (
    HERE,
    Processes,
    check_reply,
    expect_line,
    free_port,
    group_cpu_seconds,
    start_gateway,
    start_upstream,
    serve_bench,
)

REPO = HERE.parent
# What an older commit's counting needs of it: the core, and the plugins of the guardrails on.
EXPORTED = {"core": "core", "plugins/banned_keywords": "plugins/banned_keywords/src",
            "plugins/secrets": "plugins/secrets/src"}
ROUND_TIMEOUT_S = 300.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=count, default=7,
                        help="rounds, each counting and loading the gateway (default 7)")
    parser.add_argument("--calls", type=count, default=3000,
                        help="calls counted per round and way of counting (default 3000)")
    parser.add_argument("--duration", type=positive, default=4.0,
                        help="seconds of load on the gateway per round (default 4)")
    parser.add_argument("--connections", type=count, default=16,
                        help="connections of that load (default 16)")
    parser.add_argument("--baseline-ref", metavar="REF",
                        help="also measure this git commit's counting, in the same rounds")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk when installed, else python)")
    return parser.parse_args(argv)


class Counting:
    """One ``metrics_counting.py`` process: a round of counting on request."""

    def __init__(self, procs: Processes, config: Path, env: dict[str, str], log: Path):
        self.log = log
        self.proc = procs.start([sys.executable, str(HERE / "metrics_counting.py"),
                                 "--config", str(config)], log, env=env, stdout_pipe=True,
                                stdin_pipe=True)
        self.setup = json.loads(expect_line(self.proc, "READY ", log,
                                            "the counting process did not start"))

    def round(self, calls: int) -> dict[str, float]:
        """Microseconds of CPU per call: observe, and counting (logged - unlogged)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"ROUND {calls}\n".encode())
        self.proc.stdin.flush()
        seconds = json.loads(expect_line(self.proc, "ROUND ", self.log,
                                         "the counting process failed", ROUND_TIMEOUT_S))
        return {"observe": 1e6 * seconds["observe"],
                "counting": 1e6 * (seconds["logged"] - seconds["unlogged"]),
                "logged": 1e6 * seconds["logged"], "unlogged": 1e6 * seconds["unlogged"]}


def exported(ref: str, workdir: Path) -> tuple[str, str]:
    """``ref``'s short commit, and a ``PYTHONPATH`` that puts its code first."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    tree = workdir / f"baseline-{commit}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, *EXPORTED],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return commit, os.pathsep.join(str(tree / path) for path in EXPORTED.values())


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> None:
    guardrails = find_guardrails()
    upstream_port, _ = start_upstream(procs, workdir)
    plain = write_config(workdir, MODEL, upstream_port, guardrails)
    counted = write_config(workdir, MODEL, upstream_port, guardrails,
                           callbacks=["prometheus"], name="counted.yaml")
    # One process's metrics: no multiprocess files, whatever this shell has set.
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(guardrails.plugins_env())
    # The installed gatehouse, the one the gateway runs.
    sides = {"installed": Counting(procs, counted, env, workdir / "counting.log")}
    if args.baseline_ref:
        commit, path = exported(args.baseline_ref, workdir)
        baseline = sides[commit] = Counting(procs, counted, {**env, "PYTHONPATH": path},
                                            workdir / "baseline.log")
        if not baseline.setup["gatehouse"].startswith(str(workdir)):
            raise BenchError(f"the baseline imported gatehouse from "
                             f"{baseline.setup['gatehouse']}, not from the export of {commit}")
    gateway_port = free_port()
    gateway = start_gateway(procs, plain, gateway_port, 1, guardrails.plugins_env(), workdir)
    url = f"http://127.0.0.1:{gateway_port}{CHAT_PATH}"
    body = request_body(False)
    applied = check_reply(url, body, {})
    load = pick_load_generator(args.loadgen, body, workdir, {})

    print(machine())
    print(f"guardrails on: {guardrails.describe()}; applied per the reply header: "
          f"{', '.join(applied) or 'none'}; no master key")
    for name, side in sides.items():
        print(f"counting ({name}): the call counted: status {side.setup['status']}, "
              f"guardrail runs: {', '.join(side.setup['guardrail_runs']) or 'none'}")
    print(f"gateway: one process, no callbacks, {args.connections} connection(s), "
          f"{load.name}")
    print(f"{args.rounds} rounds of {args.calls:,} calls per way of counting and "
          f"{args.duration:g} s of load\n")

    load.run(url, args.connections, 1.0)  # warm-up
    for side in sides.values():
        side.round(max(args.calls // 10, 1))
    counting: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    gateway_us: list[float] = []

    def count(round_no: int) -> None:
        for name, side in sides.items():
            figures = side.round(args.calls)
            counting[name].append(figures)
            print(f"  round {round_no + 1}/{args.rounds}  counting ({name})  observe "
                  f"{figures['observe']:5.1f} us  call log {figures['unlogged']:5.1f} -> "
                  f"{figures['logged']:5.1f} us  counting {figures['counting']:5.1f} us",
                  flush=True)

    def call(round_no: int) -> None:
        before = group_cpu_seconds(gateway.pid)
        sample = load.run(url, args.connections, args.duration)
        gateway_us.append(1e6 * (group_cpu_seconds(gateway.pid) - before)
                          / max(sample.requests, 1))
        print_sample(round_no, args.rounds, args.connections, "gateway",
                     dataclasses.replace(sample, cpu_us=gateway_us[-1]))

    for round_no in range(args.rounds):
        # Every other round the gateway first, so a busy spell falls on both parts.
        for step in (count, call) if round_no % 2 == 0 else (call, count):
            step(round_no)
    report(counting, gateway_us)


def summary(rounds: list[dict[str, float]], gateway_us: list[float]
            ) -> dict[str, tuple[float, float]]:
    """One side's figures, each as (best, median). Best is the least round: noise only adds
    CPU (for counting, the least with it minus the least without it); the median's share is
    the median of each round's counting over that round's call."""
    counting = min(r["logged"] for r in rounds) - min(r["unlogged"] for r in rounds)
    return {
        "observe": (min(r["observe"] for r in rounds),
                    statistics.median(r["observe"] for r in rounds)),
        "counting": (counting, statistics.median(r["counting"] for r in rounds)),
        "share": (counting / min(gateway_us),
                  statistics.median(r["counting"] / g for r, g in zip(rounds, gateway_us))),
    }


def report(counting: dict[str, list[dict[str, float]]], gateway_us: list[float]) -> None:
    sides = {name: summary(rounds, gateway_us) for name, rounds in counting.items()}
    print("\nCPU per call, best and median of the rounds")
    table = Table("<40", *(" >11" for _ in range(2 * len(sides))))
    table.row("", *(name[:11] for name in sides for _ in range(2)))
    table.row("", *("best", "median") * len(sides))

    def cells(figure: str, shown: str) -> list[str]:
        return [format(value, shown) for side in sides.values() for value in side[figure]]

    table.row("Metrics.observe, us", *cells("observe", ".1f"))
    table.row("counting (call log with - without), us", *cells("counting", ".1f"))
    table.row("a gateway call, no callbacks, us", f"{min(gateway_us):.0f}",
              f"{statistics.median(gateway_us):.0f}")
    table.row("counting / a call", *cells("share", ".1%"))
    table.row("with / without prometheus",
              *(f"{1 + share:.3f}x" for side in sides.values() for share in side["share"]))
    print("\ntarget (issue 13): counting costs a call at most 5% more CPU, <= 1.050x")


def main(argv: Sequence[str] | None = None) -> int:
    return serve_bench("metrics_cost", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
