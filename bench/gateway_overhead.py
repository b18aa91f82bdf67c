"""What the gateway adds to a chat completion (non-streaming, or with ``--stream`` streamed):
latency and throughput, measured against the same upstream called directly, in the same run.

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
    python bench/gateway_overhead.py --stream              # streamed replies, a chunk a word
    python bench/gateway_overhead.py --virtual-key         # as a key on a team in an org
    python bench/gateway_overhead.py --master-key          # as the master key (its baseline)
    python bench/gateway_overhead.py --both-keys           # both, in the same rounds
    python bench/gateway_overhead.py --profile prof.txt    # plus a py-spy profile of the gateway

The parts: gateway_servers.py starts, checks and stops the servers; gateway_config.py writes
the gateway's config; gateway_load.py drives the load; gateway_report.py prints the figures;
gateway_profile.py runs py-spy.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from benchkit import arguments, at_least_zero, count, positive
from gateway_config import Guardrails, find_guardrails, write_config
from gateway_identity import master_key, virtual_key
from gateway_load import CHAT_PATH, MODEL, LoadGenerator, pick_load_generator, request_body
from gateway_profile import profile
from gateway_report import Cell, print_sample, print_setup, report
from gateway_servers import (
    Processes,
    check_reply,
    free_port,
    group_cpu_seconds,
    start_gateway,
    start_upstream,
    serve_bench,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments(__doc__)
    parser.add_argument("--duration", type=positive, default=5.0,
                        help="seconds of load per measurement (default 5)")
    parser.add_argument("--warmup", type=at_least_zero, default=1.0,
                        help="seconds of unmeasured load per side before measuring (default 1)")
    parser.add_argument("--rounds", type=count, default=3,
                        help="direct/gateway pairs per connection count (default 3)")
    parser.add_argument("--connections", type=count, nargs="+", default=[1, 16],
                        help="connection counts to measure (default: 1 16)")
    parser.add_argument("--workers", type=count, default=1,
                        help="gateway processes (default 1, as the targets assume)")
    parser.add_argument("--no-guardrails", action="store_true",
                        help="run the gateway with no guardrail plugins at all")
    parser.add_argument("--stream", action="store_true",
                        help="ask for streamed replies (about 40 chunks each) instead of whole "
                             "ones")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--virtual-key", action="store_true",
                      help="run with a master key and call with a virtual key on a team in "
                           "an organization (key, team, user and organization checks)")
    keys.add_argument("--master-key", action="store_true",
                      help="run with a master key and call with it: the baseline --virtual-key "
                           "is held to")
    keys.add_argument("--both-keys", action="store_true",
                      help="measure the master key and the virtual key in the same rounds, "
                           "against one gateway, and print virtual / master")
    parser.add_argument("--callbacks", nargs="+", default=[], metavar="NAME",
                        help="measure the gateway with these callbacks (prometheus, otel) "
                             "against the same gateway without them")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk when installed, else python)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="afterwards, profile the gateway with py-spy under load at the "
                             "highest connection count and write folded stacks to FILE")
    args = parser.parse_args(argv)
    args.connections = sorted(set(args.connections))
    return args


def measure(loads: dict[str, LoadGenerator], urls: dict[str, str], servers: dict[str, int],
            connections: Sequence[int], duration: float, warmup: float,
            rounds: int) -> dict[int, Cell]:
    """Each side (``direct``, ``gateway``, and with ``--both-keys`` ``virtual``) has its load,
    its URL, and in ``servers`` the process group whose CPU its figures charge."""
    if warmup > 0:
        for side, url in urls.items():
            loads[side].run(url, max(connections), warmup)
    cells = {c: Cell() for c in connections}
    for round_no in range(rounds):
        for conns in connections:
            order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
            for side in order:
                cpu_before = group_cpu_seconds(servers[side])
                sample = loads[side].run(urls[side], conns, duration)
                cpu = group_cpu_seconds(servers[side]) - cpu_before
                sample = dataclasses.replace(sample, cpu_us=1e6 * cpu / max(sample.requests, 1))
                getattr(cells[conns], side).append(sample)
                print_sample(round_no, rounds, conns, side, sample)
    return cells


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> None:
    guardrails = Guardrails() if args.no_guardrails else find_guardrails()
    master = master_key() if args.virtual_key or args.master_key or args.both_keys else None
    body = request_body(args.stream)

    upstream_port, upstream_pid = start_upstream(procs, workdir)
    config = write_config(workdir, MODEL, upstream_port, guardrails, master, args.callbacks)
    gateway_port = free_port()
    gateway = start_gateway(procs, config, gateway_port, args.workers, guardrails.plugins_env(),
                            workdir)
    if args.callbacks:
        # The baseline is the same gateway without the callbacks, not the upstream: what they
        # cost a call is the ratio.
        plain_config = write_config(workdir, MODEL, upstream_port, guardrails, master,
                                    name="plain.yaml")
        plain_port = free_port()
        plain = start_gateway(procs, plain_config, plain_port, args.workers,
                              guardrails.plugins_env(), workdir, "plain.log")
    headers: dict[str, str] = {}
    notes = list(guardrails.notes)
    if args.virtual_key:
        headers, where = virtual_key(f"http://127.0.0.1:{gateway_port}", master)
        notes.append(f"calls carry a virtual key on {where}")
    elif master is not None:
        headers = {"Authorization": f"Bearer {master}"}
        notes.append("calls carry the master key")
    load = pick_load_generator(args.loadgen, body, workdir, headers)
    urls = {"direct": f"http://127.0.0.1:{upstream_port}{CHAT_PATH}",
            "gateway": f"http://127.0.0.1:{gateway_port}{CHAT_PATH}"}
    loads = {"direct": load, "gateway": load}
    # Each server leads its own process group (see Processes), so its pid is the group id.
    servers = {"direct": upstream_pid, "gateway": gateway.pid, "virtual": gateway.pid}
    if args.callbacks:
        urls["direct"] = f"http://127.0.0.1:{plain_port}{CHAT_PATH}"
        servers["direct"] = plain.pid
        notes.append(f"direct = the gateway without callbacks; gateway = the gateway with "
                     f"callbacks: {', '.join(args.callbacks)}; the targets do not apply")
    check_reply(urls["direct"], body, headers)
    applied = check_reply(urls["gateway"], body, headers)
    if args.both_keys:
        virtual_headers, where = virtual_key(f"http://127.0.0.1:{gateway_port}", master)
        notes.append(f"gateway: calls carry the master key; virtual: a virtual key on {where}")
        (workdir / "virtual").mkdir()
        loads["virtual"] = pick_load_generator(args.loadgen, body, workdir / "virtual",
                                               virtual_headers)
        urls["virtual"] = urls["gateway"]
        check_reply(urls["virtual"], body, virtual_headers)
    print_setup(args, load.name, guardrails.describe(), notes, applied)

    cells = measure(loads, urls, servers, args.connections, args.duration, args.warmup,
                    args.rounds)
    report(cells, args.rounds, args.workers, args.stream)
    if args.profile is not None:
        # With --both-keys, the virtual key's calls: the master key's are --master-key's.
        side = "virtual" if args.both_keys else "gateway"
        profile(loads[side], gateway.pid, urls[side], max(args.connections), args.duration,
                args.profile.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    return serve_bench("gateway_overhead", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
