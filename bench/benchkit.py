"""What the benches here share: their command lines and the event loop their servers run on.

Standard library only: the upstream and the load generator import it too, in processes the
overhead bench starts and waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

R = TypeVar("R")


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


# --- event loop ------------------------------------------------------------------------------------


def run_async(main: Coroutine[Any, Any, R]) -> R:
    """``main`` on uvloop where it is installed (on Linux it comes with the gateway), so the
    bench's own servers and clients cost as little CPU as they can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
