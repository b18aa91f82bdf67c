"""``gatehouse``: run the gateway, or check a config file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from typing import Sequence

import orjson
from aiohttp import web

from .app import GATEWAY, create_app
from .config import Config, ConfigError, load_config
from .gateway import StartupError
from .plugins import PluginError, load_plugins

log = logging.getLogger("gatehouse")

DEFAULT_CONFIG = "config.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = args.command or "run"
    if command == "plugins":
        return _list_plugins(args.json)
    try:
        config = load_config(args.config)
        if command == "check-config":
            asyncio.run(_start_and_stop(create_app(config, source=args.config)))
            print(f"{args.config}: OK ({len(config.model_list)} models, "
                  f"{len(config.guardrails) + len(config.all_callbacks)} guardrails)")
            return 0
        return _run(config, args)
    except (ConfigError, PluginError, StartupError) as exc:
        print(f"gatehouse: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=os.environ.get("GATEHOUSE_CONFIG",
                                                                 DEFAULT_CONFIG),
                        help="path to config.yaml (default: $GATEHOUSE_CONFIG or config.yaml)")
    common.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser = argparse.ArgumentParser(
        prog="gatehouse", parents=[common],
        description="OpenAI-compatible LLM gateway with pluggable guardrails.")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", "-p", type=int, default=4000)
    parser.add_argument("--workers", "-w", type=int, default=1,
                        help="gateway processes sharing the port (default 1)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", parents=[common], help="run the gateway (the default)")
    sub.add_parser("check-config", parents=[common],
                   help="load the config and plugins, report problems, and exit")
    plugins = sub.add_parser("plugins", parents=[common],
                             help="list installed plugins and the guardrail types they offer")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    return parser


async def _start_and_stop(app: web.Application) -> None:
    """Start what a real run starts (guardrails check their models, files, vendors' settings),
    without listening, then stop."""
    gateway = app[GATEWAY]
    await gateway.start()
    await gateway.stop()


def _list_plugins(as_json: bool) -> int:
    try:
        described = load_plugins().describe()
    except PluginError as exc:
        print(f"gatehouse: error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return 0
    for plugin in described:
        print(f"{plugin['distribution']} {plugin['version']}  (plugin {plugin['name']})")
        print(f"  hooks: {', '.join(plugin['hooks']) or '-'}")
        for kind in plugin["guardrail_types"]:
            aliases = f" (aliases: {', '.join(kind['aliases'])})" if kind["aliases"] else ""
            print(f"  guardrail type {kind['name']}{aliases}: {', '.join(kind['hooks'])}")
        if plugin["providers"]:
            print(f"  providers: {', '.join(plugin['providers'])}")
    return 0


def _run(config: Config, args: argparse.Namespace) -> int:
    # Build once up front so a bad set-up fails here, before any worker starts.
    app = create_app(config, source=args.config)
    if args.workers <= 1:
        return _serve(config, args, app)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_serve_worker, args=(config, args), daemon=True)
               for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    signal.signal(signal.SIGTERM, _stop_workers)
    try:
        for worker in workers:
            worker.join()
    except (KeyboardInterrupt, SystemExit):
        for worker in workers:
            worker.terminate()  # each worker shuts down gracefully on SIGTERM
        for worker in workers:
            worker.join()
    return max((w.exitcode or 0) for w in workers)


def _stop_workers(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve_worker(config: Config, args: argparse.Namespace) -> None:
    sys.exit(_serve(config, args))


def _serve(config: Config, args: argparse.Namespace, app: web.Application | None = None
           ) -> int:
    """Serve ``app``, or, in a worker, an app of its own (its request ids must differ from its
    siblings')."""
    loop = _new_loop()
    if app is None:
        app = create_app(config, source=args.config)
    log.info("gatehouse %d: %d models, guardrails: %s", os.getpid(), len(config.model_list),
             ", ".join(app[GATEWAY].guardrails) or "none")
    try:
        web.run_app(app, host=args.host, port=args.port, loop=loop, access_log=None,
                    reuse_port=args.workers > 1, print=lambda *a: log.info(*a))
    except StartupError as exc:
        print(f"gatehouse: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gatehouse: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    sys.exit(main())
