"""The keyword list as config gives it: inline, or a path to a text file with one per line.

Problems are ``ValueError``s worded for the operator: the params model turns them into a
start-up error that names the field (and the file).
"""

from __future__ import annotations

from pathlib import Path


def read_keyword_file(path: Path) -> list[str]:
    """Keywords in a text file, one per line; blank lines and lines starting with ``#`` are
    skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"keyword file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read keyword file {path}: {exc}") from None
    keywords = [line for line in map(str.strip, text.splitlines())
                if line and not line.startswith("#")]
    if not keywords:
        raise ValueError(f"keyword file {path} lists no keywords")
    return keywords


def clean_keywords(keywords: list[str]) -> list[str]:
    """Keywords without surrounding whitespace, empty ones dropped. None left is an error: a
    guardrail that can never block is a mistake in config, not a choice."""
    kept = [keyword.strip() for keyword in keywords if keyword.strip()]
    if not kept:
        raise ValueError("lists no keywords")
    return kept
