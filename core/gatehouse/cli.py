"""``gatehouse``: run the gateway, check a config file, or replay stored calls through a
candidate config's guardrails."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any, Iterator, Sequence

import orjson
from aiohttp import web

from .access import durations
from .admin.key_views import key_ident
from .app import GATEWAY, Runner, create_app
from .config import Config, ConfigError, load_config
from .gateway import StartupError
from .guardrails.replay import DEFAULT_RATE, Filters, ReplayError, open_database, replay
from .ops import logs
from .ops.metrics import MULTIPROC_DIR
from .plugins import CORE_DISTRIBUTION, PluginError, load_plugins
from .secret_managers import SecretManagerError
from .secret_managers.aws import decrypt_environment

log = logging.getLogger("gatehouse")

DEFAULT_CONFIG = "config.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv, argparse.Namespace(**_defaults()))
    logs.setup(args.log_level, json_lines=logs.json_logs_wanted(False))
    log.debug("%s; options: %s", _version(), vars(args))
    if args.command == "plugins":
        return _list_plugins(args.json)
    if args.command == "check-config":
        # A guardrail class beside the config is imported like any module; checking must not
        # leave a __pycache__ folder there.
        sys.dont_write_bytecode = True
    try:
        # As LiteLLM: the exact string, and before the config, whose os.environ/ references
        # may name what it decrypts.
        if os.environ.get("USE_AWS_KMS") == "True":
            log.info("USE_AWS_KMS: decrypted %s", ", ".join(decrypt_environment()) or "nothing")
        config = load_config(args.config)
        if config.settings.json_logs:
            logs.setup(args.log_level, json_lines=True)
        if args.command == "replay":
            return asyncio.run(_replay(create_app(config, source=args.config), args))
        if args.command == "check-config":
            asyncio.run(_check(create_app(config, source=args.config)))
            print(f"{args.config}: OK ({len(config.model_list)} models, "
                  f"{len(config.guardrails) + len(config.all_callbacks)} guardrails)")
            return 0
        return _run(config, args)
    except (ConfigError, PluginError, StartupError, SecretManagerError, ReplayError) as exc:
        print(f"gatehouse: error: {exc}", file=sys.stderr)
        return 2


def _defaults() -> dict[str, object]:
    # Applied once, before parsing, rather than as argparse defaults: a subcommand's parser
    # would otherwise put its defaults over the values given before the subcommand.
    return {"command": "run", "config": os.environ.get("GATEHOUSE_CONFIG", DEFAULT_CONFIG),
            "log_level": "info", "host": "0.0.0.0", "port": 4000, "workers": 1}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse", argument_default=argparse.SUPPRESS,
        description="OpenAI-compatible LLM gateway with pluggable guardrails.")
    version = _version()
    _add_options(parser, version)
    sub = parser.add_subparsers(dest="command")
    for name, text in (("run", "run the gateway (the default)"),
                       ("check-config", "load the config and plugins, report problems, and "
                                        "exit, writing no files"),
                       ("plugins", "list installed plugins and the guardrail types they offer")):
        _add_options(sub.add_parser(name, help=text, argument_default=argparse.SUPPRESS),
                     version)
    sub.choices["plugins"].add_argument("--json", action="store_true", default=False,
                                        help="print JSON")
    _add_replay(sub)
    return parser


def _add_replay(sub: Any) -> None:
    replay = sub.add_parser(
        "replay", argument_default=argparse.SUPPRESS,
        help="run the --config file's guardrails over the calls stored in its database "
             "(store_prompts_in_spend_logs) and report what they would have done")
    _add_options(replay, _version())
    replay.add_argument("--since", default="7d", type=_since,
                        help="replay the calls of this last while: 24h, 7d, ... (default 7d)")
    replay.add_argument("--key", default=None,
                        help="only the calls of this key (sk-... or its hash)")
    replay.add_argument("--team", default=None, help="only the calls of this team id")
    replay.add_argument("--limit", default=None, type=_positive(int),
                        help="only the newest N calls")
    replay.add_argument("--rate", default=DEFAULT_RATE, type=_positive(float),
                        help=f"at most this many vendor calls a second (default "
                             f"{DEFAULT_RATE:g})")
    replay.add_argument("--json", action="store_true", default=False, help="print JSON")


def _since(value: str) -> float:
    try:
        return time.time() - durations.seconds(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value!r}: must be more than 0")
        return number
    return parse


def _add_options(parser: argparse.ArgumentParser, version: str) -> None:
    """The options taken both before and after the subcommand; the later one wins."""
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument("--config", "-c",
                        help=f"path to config.yaml (default: $GATEHOUSE_CONFIG or "
                             f"{DEFAULT_CONFIG})")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="default: info")
    # LiteLLM's start flags, so its command lines work unchanged.
    parser.add_argument("--detailed_debug", dest="log_level", action="store_const",
                        const="debug", help="as --log-level debug (LiteLLM's flag)")
    parser.add_argument("--debug", dest="log_level", action="store_const", const="info",
                        help="as --log-level info (LiteLLM's flag)")
    parser.add_argument("--host", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument("--port", "-p", type=int, help="default: 4000")
    parser.add_argument("--workers", "--num_workers", "-w", type=int,
                        help="gateway processes sharing the port; one that dies is "
                             "replaced (default: 1)")


def _version() -> str:
    try:
        return f"{CORE_DISTRIBUTION} {metadata.version(CORE_DISTRIBUTION)}"
    except metadata.PackageNotFoundError:  # run from a source tree without installing it
        return f"{CORE_DISTRIBUTION} (not installed)"


async def _check(app: web.Application) -> None:
    """Start what a real run starts (guardrails check their models, files, vendors' settings),
    without listening or opening the database, then stop."""
    gateway = app[GATEWAY]
    await gateway.start(check_only=True)
    await gateway.stop()


async def _replay(app: web.Application, args: argparse.Namespace) -> int:
    """Start the candidate's guardrails as a check does (no port, no background jobs), open
    the database it names, and replay."""
    gateway = app[GATEWAY]
    await gateway.start(check_only=True)
    try:
        await open_database(gateway.store)
        filters = Filters(since=args.since, key_hash=key_ident(args.key)[0] if args.key else None,
                          team_id=args.team, limit=args.limit)
        report = await replay(gateway.guardrails, gateway.store, filters, rate=args.rate)
    finally:
        await gateway.stop()
    print(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode() if args.json
          else report.text())
    return 0


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
    with _metrics_dir(args.workers > 1 and config.wants("prometheus")):
        # Build once up front so a bad set-up fails here, before any worker starts.
        app = create_app(config, source=args.config)
        if args.workers <= 1:
            return _serve(config, args, app)
        return _Supervisor(config, args).run()


@contextlib.contextmanager
def _metrics_dir(workers_share: bool) -> Iterator[None]:
    """Where every worker's Prometheus values are kept for one scrape to add up: the
    operator's ``PROMETHEUS_MULTIPROC_DIR``, emptied of a previous run's values, or, for
    workers, a folder of the run's own, removed at the end. Set before prometheus-client is
    first imported, which is when it picks its mode."""
    given = os.environ.get(MULTIPROC_DIR)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    if not workers_share:
        yield
        return
    folder = tempfile.mkdtemp(prefix="gatehouse-metrics-")
    os.environ[MULTIPROC_DIR] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(folder, ignore_errors=True)


# A worker that dies this soon after it started most likely failed to start, and its
# replacement would too: replacements then wait, twice as long each time, and so many such
# deaths within the window end the run rather than loop.
START_GRACE = 10.0
START_BACKOFF = 0.5
START_FAILURES, START_FAILURE_WINDOW = 5, 60.0
# Longer than aiohttp gives a worker's open requests to finish after SIGTERM (60 s).
STOP_TIMEOUT = 65.0


class _Supervisor:
    """Keeps ``args.workers`` gateway processes serving one port (SO_REUSEPORT), replacing any
    that dies, until SIGTERM or SIGINT."""

    def __init__(self, config: Config, args: argparse.Namespace):
        self.config = config
        self.args = args
        self.context = multiprocessing.get_context("fork")
        self.workers: dict[int, tuple[BaseProcess, float]] = {}  # sentinel -> (worker, start)
        self.due: list[float] = []  # when each replacement still to start is due
        self.failed_starts: collections.deque[float] = collections.deque()
        self.handlers: dict[int, Any] = {}  # the signal handlers the workers get back

    def run(self) -> int:
        # A signal only has to end the wait for the workers: Python writes it to this pipe,
        # which the wait watches, and the handlers themselves do nothing.
        wakeup, wakeup_write = os.pipe()
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.handlers[signum] = signal.signal(signum, lambda *_: None)
        try:
            for _ in range(self.args.workers):
                self._start()
            while True:
                timeout = max(0.0, self.due[0] - time.monotonic()) if self.due else None
                ready = wait([wakeup, *self.workers], timeout)
                if wakeup in ready:
                    log.info("%s received; stopping the workers",
                             signal.Signals(os.read(wakeup, 1)[0]).name)
                    return 0
                for sentinel in ready:
                    worker, started = self.workers.pop(sentinel)
                    worker.join()
                    if (code := self._replace(worker, started)) is not None:
                        return code
                while self.due and self.due[0] <= time.monotonic():
                    self.due.pop(0)
                    self._start()
        finally:
            self._stop()

    def _start(self) -> None:
        worker = self.context.Process(target=self._work, daemon=True)
        worker.start()
        self.workers[worker.sentinel] = (worker, time.monotonic())
        log.info("worker %d started", worker.pid)

    def _work(self) -> None:
        # Forked with the supervisor's signal handling; a worker stops on SIGTERM and SIGINT
        # as a lone gateway does.
        signal.set_wakeup_fd(-1)
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler)
        sys.exit(_serve(self.config, self.args))

    def _replace(self, worker: BaseProcess, started: float) -> int | None:
        """Schedule a replacement for a worker that died; or, when too many died just after
        starting, return the exit code to end with."""
        code = worker.exitcode or 0
        if os.environ.get(MULTIPROC_DIR):
            # Its gauges go from the scrape; its counts stay.
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)
        how = f"exited with code {code}"
        if code < 0:
            how += f" (killed by {signal.Signals(-code).name})"
        now = time.monotonic()
        delay = 0.0
        if now - started < START_GRACE:
            self.failed_starts.append(now)
            while self.failed_starts[0] < now - START_FAILURE_WINDOW:
                self.failed_starts.popleft()
            if len(self.failed_starts) >= START_FAILURES:
                print(f"gatehouse: error: workers keep exiting within {START_GRACE:g} s of "
                      f"starting ({len(self.failed_starts)} in {START_FAILURE_WINDOW:g} s; "
                      f"worker {worker.pid} {how}); giving up", file=sys.stderr)
                return code if code > 0 else 1
            delay = START_BACKOFF * 2 ** (len(self.failed_starts) - 1)
        log.warning("worker %d %s; starting a new one%s", worker.pid, how,
                    f" in {delay:g} s" if delay else "")
        self.due.append(now + delay)
        self.due.sort()
        return None

    def _stop(self) -> None:
        for worker, _ in self.workers.values():
            worker.terminate()  # each worker shuts down gracefully on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker, _ in self.workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.exitcode is None:
                log.warning("worker %d did not stop within %g s; killing it", worker.pid,
                            STOP_TIMEOUT)
                worker.kill()
                worker.join()


def _serve(config: Config, args: argparse.Namespace, app: web.Application | None = None
           ) -> int:
    """Serve ``app``, or, in a worker, an app of its own (its request ids must differ from its
    siblings')."""
    loop = _new_loop()
    if app is None:
        app = create_app(config, source=args.config)
    log.info("gatehouse %d: %d models, guardrails: %s", os.getpid(), len(config.model_list),
             ", ".join(app[GATEWAY].guardrails) or "none")
    serving = loop.create_task(_listen(app, args))
    try:
        loop.run_until_complete(serving)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except StartupError as exc:
        print(f"gatehouse: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gatehouse: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    finally:
        # SIGTERM leaves the task waiting: cancelling it runs the graceful shutdown.
        if not serving.done():
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(serving)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0


async def _listen(app: web.Application, args: argparse.Namespace) -> None:
    """What ``web.run_app`` does, with the gateway's :class:`Runner` (``run_app`` takes no
    runner); SIGTERM and SIGINT raise GracefulExit out of the loop."""
    runner = Runner(app, handle_signals=True, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port, reuse_port=args.workers > 1).start()
        log.info("Running on http://%s:%d", args.host, args.port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    sys.exit(main())
