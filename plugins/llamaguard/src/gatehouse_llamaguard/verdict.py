"""Reading a Llama Guard answer.

The answer is taken only in its exact form -- ``safe``, or ``unsafe`` and a line of category
codes -- because anything else means the model was not doing the job, and a guardrail that
guessed would let content through on a misread.
"""

from __future__ import annotations

from .categories import Categories

_EXCERPT = 60


class MalformedVerdict(ValueError):
    """The model's answer is not in the form the prompt asked for."""


def parse_verdict(answer: str, categories: Categories) -> tuple[str, ...]:
    """The violated category codes, in the model's order; empty when the answer is ``safe``."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    if lines == ["safe"]:
        return ()
    if len(lines) != 2 or lines[0] != "unsafe":
        raise MalformedVerdict(f"expected 'safe', or 'unsafe' and a line of category codes; "
                               f"got {_excerpt(answer)}")
    codes = [code.strip() for code in lines[1].split(",")]
    unknown = [code for code in codes if code not in categories.names]
    if unknown:
        raise MalformedVerdict(f"unknown category {_excerpt(', '.join(unknown))} in "
                               f"{_excerpt(lines[1])}; configured: "
                               f"{', '.join(categories.names)}")
    return tuple(dict.fromkeys(codes))


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")
