"""Writing to prometheus-client's labelled children at the cost of a float addition.

A child's public ``inc`` and ``observe`` check on every call that the metric is a child, that
the amount is not negative, and (``observe``) walk the bucket bounds in Python; for the two dozen
values one gateway call moves, those checks are most of what counting it costs. A cell does
the checks once, when it is made, and then adds straight to the child's values: prometheus-
client's own value objects (a float under a lock, or with ``--workers N`` a slot in the
worker's multiprocess file), so the exposition, multiprocess mode and the scrape stay the
library's. The attributes read here (``_value``; ``_sum``, ``_buckets``, ``_upper_bounds``) have
been the same since prometheus-client 0.4.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable


def counting(child: Any) -> Callable[[float], None]:
    """A counter child's ``inc`` without its checks: callers add amounts already known to be
    at least zero (a counter never goes down)."""
    child._raise_if_not_observable()
    return child._value.inc  # type: ignore[no-any-return]


class Timing:
    """A histogram child's ``observe``, with the bucket found by bisection."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, child: Any):
        child._raise_if_not_observable()
        # Bucket i counts the amounts <= bound i (the last bound is +Inf); bisect_left finds
        # the first bound an amount does not exceed, as the library's loop does.
        self._bounds = tuple(child._upper_bounds)
        self._buckets = tuple(bucket.inc for bucket in child._buckets)
        self._sum = child._sum.inc

    def observe(self, amount: float) -> None:
        self._sum(amount)
        self._buckets[bisect_left(self._bounds, amount)](1)
