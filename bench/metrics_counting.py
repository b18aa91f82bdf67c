"""The counting side of ``metrics_cost.py``, run as its own process so that an older commit's
gatehouse, first on ``PYTHONPATH``, can be measured beside the current one in the same run.

It builds the gateway from ``--config`` (whose callbacks include ``prometheus``), serves it on
127.0.0.1, sends it a few chat completions, and keeps what the last one handed the call log:
the call (its guardrail runs, the deployment that answered), the guardrail selection, and the
outcome, as a real call leaves them. Then it stops the gateway, so no background task runs
while it times, prints ``READY <json>``, and for every ``ROUND <calls>`` line on its standard
input prints ``ROUND <json>``: the process CPU seconds per call of

* ``observe``: ``Metrics.observe`` on the call, its reply already parsed;
* ``logged``: a call log with the metrics as its observer, shown the call as the gateway shows
  it (``submit``, then one turn of the event loop, in which the log hands it on);
* ``unlogged``: the same with no observer, which is what the call log costs a gateway
  without ``prometheus``; ``logged`` minus this is what counting adds.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import time
from typing import Any

import aiohttp
import gatehouse
from aiohttp import web
from gatehouse.app import GATEWAY, create_app
from gatehouse.config import load_config
from gatehouse.proxy.calllog import CallLog

from benchkit import BenchError, arguments, cpu_seconds, run_async
from gateway_load import CHAT_PATH, request_body

CALLS_SEEN = "litellm_proxy_total_requests_metric_total"


async def captured_call(config_path: str) -> tuple[Any, Any, Any, float, Any]:
    """The (call, selection, outcome, ended) of the last of a few real calls, and the gateway's
    metrics. The outcome is copied as it was submitted: the call log parses its reply later."""
    app = create_app(load_config(config_path), source=config_path)
    gateway = app[GATEWAY]
    if gateway.metrics is None:
        raise BenchError(f"{config_path} does not turn on the prometheus callback")
    submitted: list[tuple[Any, Any, Any, float]] = []
    submit = gateway.call_log.submit

    async def keep(call: Any, selection: Any, outcome: Any) -> None:
        submitted.append((call, selection, copy.copy(outcome), time.time()))
        await submit(call, selection, outcome)

    gateway.call_log.submit = keep
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.post(f"http://127.0.0.1:{port}{CHAT_PATH}",
                                        data=request_body(False),
                                        headers={"content-type": "application/json"}) as resp:
                    if resp.status != 200:
                        raise BenchError(f"the gateway answered {resp.status}: "
                                         f"{(await resp.text())[:500]}")
                    await resp.read()
    finally:
        await runner.cleanup()
    if not submitted:
        raise BenchError("the gateway handed no call to its call log")
    return (*submitted[-1], gateway.metrics)


def fresh(outcome: Any) -> Any:
    """An outcome as submitted: the call log replaces its reply by the parsed object."""
    again = copy.copy(outcome)
    again.response = copy.copy(outcome.response)
    return again


def calls_counted(metrics: Any) -> float:
    return sum(sample.value for metric in metrics.registry.collect()
               for sample in metric.samples if sample.name == CALLS_SEEN)


async def measure(config_path: str) -> None:
    call, selection, outcome, ended, metrics = await captured_call(config_path)
    # The outcome as the call log shows it to its observers: the reply parsed.
    parsed = fresh(outcome)
    if hasattr(parsed.response, "data"):
        parsed.response = parsed.response.data
    logs = {"logged": CallLog(None, [metrics]), "unlogged": CallLog(None, [])}
    for log in logs.values():
        log.start()

    def observe(calls: int) -> None:
        for _ in range(calls):
            metrics.observe(call, selection, parsed, ended)

    async def shown(log: CallLog, outcomes: list[Any]) -> None:
        for each in outcomes:
            await log.submit(call, selection, each)
            await asyncio.sleep(0)

    print("READY " + json.dumps({
        "gatehouse": gatehouse.__file__, "status": outcome.status,
        "guardrail_runs": [f"{run.name} {run.mode} {run.status}"
                           for run in call.guardrail_runs or ()]}), flush=True)
    for round_no, line in enumerate(sys.stdin):
        calls = int(line.split()[1])
        counted = calls_counted(metrics)
        figures = {"observe": cpu_seconds(lambda: observe(calls))[0]}
        # Every other round the other order, so neither log always runs on a warmer cache.
        for name, log in sorted(logs.items(), reverse=round_no % 2 == 1):
            outcomes = [fresh(outcome) for _ in range(calls)]
            started = time.process_time()
            await shown(log, outcomes)
            figures[name] = time.process_time() - started
        await logs["logged"].drain()
        if calls_counted(metrics) - counted != 2 * calls:
            raise BenchError("the metrics did not count every call shown to them")
        print("ROUND " + json.dumps({k: v / calls for k, v in figures.items()}), flush=True)
    for log in logs.values():
        await log.stop()


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--config", required=True, help="gateway config with prometheus on")
    args = parser.parse_args()
    try:
        run_async(measure(args.config))
    except BenchError as exc:
        print(f"metrics_counting: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
