"""What the overhead bench prints: the setup, a line per load, and at the end the medians over
the rounds, the gateway/direct ratios, the added p50 and the targets with pass or fail.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchkit import Table, machine
from gateway_load import Sample

# The targets, for a 2-core machine and one gateway process.
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P50_CONNECTIONS = 1
TARGET_RPS = 1500.0
TARGET_RPS_CONNECTIONS = 16


@dataclass
class Cell:
    """All rounds at one connection count: direct and gateway samples, paired by round, and
    with ``--both-keys`` the virtual key's (``gateway`` is then the master key's)."""

    direct: list[Sample] = field(default_factory=list)
    gateway: list[Sample] = field(default_factory=list)
    virtual: list[Sample] = field(default_factory=list)

    def median(self, side: str, metric: str) -> float:
        return float(statistics.median(getattr(s, metric) for s in getattr(self, side)))

    def ratio(self, metric: str, over: str = "gateway", under: str = "direct") -> float:
        # Per-round ratios: each pair ran back to back, so they share the machine's mood.
        return float(statistics.median(
            getattr(o, metric) / getattr(u, metric)
            for u, o in zip(getattr(self, under), getattr(self, over)) if getattr(u, metric)))

    def added_p50_ms(self) -> float:
        return statistics.median(g.p50_ms - d.p50_ms for d, g in zip(self.direct, self.gateway))


def print_setup(args: argparse.Namespace, load: str, guardrails: str, notes: Sequence[str],
                applied: Sequence[str]) -> None:
    # The load average says how much of the machine other work held when this ran.
    print(machine())
    print(f"load generator: {load}")
    print(f"gateway: {args.workers} process(es); upstream: aiohttp, one process; replies "
          f"{'streamed' if args.stream else 'whole'}")
    print(f"guardrails on: {guardrails}{' (--no-guardrails)' if args.no_guardrails else ''}; "
          f"applied per the reply header: {', '.join(applied) or 'none'}")
    for note in notes:
        print(f"  note: {note}")
    print(f"{args.rounds} round(s) x {args.duration:g} s per side per connection count, "
          f"{args.warmup:g} s warm-up\n")


def print_sample(round_no: int, rounds: int, connections: int, side: str,
                 sample: Sample) -> None:
    print(f"  round {round_no + 1}/{rounds}  {connections:>3} conn  {side:<7}  "
          f"{sample.rps:>9,.0f} req/s  p50 {sample.p50_ms:7.3f} ms  "
          f"p99 {sample.p99_ms:7.3f} ms  cpu {sample.cpu_us:6.0f} us/req"
          f"{f'  ERRORS {sample.errors}' if sample.errors else ''}", flush=True)


def report(cells: dict[int, Cell], rounds: int, workers: int, stream: bool) -> None:
    print(f"\nmedians over {rounds} round(s); ratio = gateway / direct, paired by round")
    print("cpu us/req: CPU the upstream (direct) or the gateway (gateway) spent per request")
    table = Table(">5", "  <8", " >10", " >9", " >9", " >11", "  >10")
    table.row("conns", "", "req/s", "p50 ms", "p99 ms", "cpu us/req", "added p50")
    for conns, cell in cells.items():
        for side in ("direct", "gateway"):
            table.row(conns, side, f"{cell.median(side, 'rps'):,.0f}",
                      f"{cell.median(side, 'p50_ms'):.3f}", f"{cell.median(side, 'p99_ms'):.3f}",
                      f"{cell.median(side, 'cpu_us'):.0f}")
        table.row("", "ratio", *(f"{cell.ratio(metric):.2f}x"
                                 for metric in ("rps", "p50_ms", "p99_ms", "cpu_us")),
                  f"{cell.added_p50_ms():+.3f} ms")
        if cell.virtual:
            table.row("", "virtual", f"{cell.median('virtual', 'rps'):,.0f}",
                      f"{cell.median('virtual', 'p50_ms'):.3f}",
                      f"{cell.median('virtual', 'p99_ms'):.3f}",
                      f"{cell.median('virtual', 'cpu_us'):.0f}")
            table.row("", "virt/mst", *(f"{cell.ratio(metric, 'virtual', 'gateway'):.2f}x"
                                        for metric in ("rps", "p50_ms", "p99_ms", "cpu_us")))
    if any(c.virtual for c in cells.values()):
        print("virtual: the same gateway called with the virtual key; virt/mst = virtual / "
              "gateway (the master key), paired by round -- the key's target is cpu <= 1.10x")
    errors = sum(s.errors for c in cells.values()
                 for s in (*c.direct, *c.gateway, *c.virtual))
    if errors:
        print(f"\nWARNING: {errors} failed requests (non-2xx or socket errors); figures are suspect")
    if stream:
        return  # the targets are for non-streaming chat
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
