"""What the benches here share: their command lines, CPU timing, the tables they print, and the
event loop their servers run on.

Standard library only: the upstream and the load generator import it too, in processes the
overhead bench starts and waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

K = TypeVar("K")
R = TypeVar("R")


class BenchError(Exception):
    """The bench cannot go on; worded for the person running it."""


# --- command line ----------------------------------------------------------------------------------


def arguments(doc: str) -> argparse.ArgumentParser:
    """A parser whose ``--help`` opens with the first paragraph of the bench's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0])


def _checked(kind: Callable[[str], R], ok: Callable[[R], bool],
             wording: str) -> Callable[[str], R]:
    def parse(text: str) -> R:
        value = kind(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {wording}")
        return value
    # argparse names the type by its __name__ when the text does not even parse.
    parse.__name__ = kind.__name__
    return parse


# A zero or negative count, size or duration would divide by zero or measure nothing.
count = _checked(int, lambda v: v >= 1, "a whole number of 1 or more")
positive = _checked(float, lambda v: 0 < v < math.inf, "a number above 0")
at_least_zero = _checked(float, lambda v: 0 <= v < math.inf, "a number of 0 or more")


def add_text_options(parser: argparse.ArgumentParser, repeats_flag: str) -> None:
    """The options of the benches that time code on generated text."""
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the generated text (default 1)")
    parser.add_argument(repeats_flag, type=count, default=3,
                        help="runs per figure; the best counts (default 3)")


# --- timing ----------------------------------------------------------------------------------------


def cpu_seconds(work: Callable[[], R]) -> tuple[float, R]:
    """CPU time this process spent in ``work``, and what it returned. CPU time rather than wall
    time, so other work on a shared machine moves the figure less."""
    started = time.process_time()
    result = work()
    return time.process_time() - started, result


def best_cpu_seconds(works: Mapping[K, Callable[[], R]],
                     repeats: int) -> dict[K, tuple[float, R]]:
    """Each work's least CPU time over ``repeats`` rounds, with what it returned. Every round runs
    every work in turn, so a busy spell on the machine slows all of them rather than one."""
    best: dict[K, tuple[float, R]] = {}
    for _ in range(repeats):
        for key, work in works.items():
            seconds, result = cpu_seconds(work)
            if key not in best or seconds < best[key][0]:
                best[key] = (seconds, result)
    return best


def megabytes(texts: Iterable[str]) -> float:
    """Size in MB of UTF-8, what the scan rates are counted in."""
    return sum(len(text.encode()) for text in texts) / 1e6


# --- output ----------------------------------------------------------------------------------------


def machine() -> str:
    """The setup line every bench prints first: the load average says how much of the machine
    other work held when it ran."""
    return (f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.system()} {platform.machine()}")


class Table:
    """Rows in aligned columns, printed as the figures come in. Each column is a format spec
    (``"<14"``, ``">10"``) behind the spaces that part it from the column before. Cells arrive
    formatted, so each figure's precision stays beside the code that computes it."""

    def __init__(self, *columns: str) -> None:
        self._columns = [(spec[:len(spec) - len(spec.lstrip(" "))], spec.lstrip(" "))
                         for spec in columns]

    def row(self, *cells: object, tail: str = "") -> None:
        """The cells from the first column on (a short row leaves the last columns out), then
        ``tail`` as it is."""
        if len(cells) > len(self._columns):
            raise ValueError(f"{len(cells)} cells for {len(self._columns)} columns")
        print("".join(f"{gap}{cell!s:{spec}}" for (gap, spec), cell in zip(self._columns, cells))
              + tail, flush=True)


# --- event loop ------------------------------------------------------------------------------------


def run_async(main: Coroutine[Any, Any, R]) -> R:
    """``main`` on uvloop where it is installed (on Linux it comes with the gateway), so the
    bench's own servers and clients cost as little CPU as they can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
