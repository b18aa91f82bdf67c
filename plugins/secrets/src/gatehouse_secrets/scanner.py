"""Finding secrets in text and replacing them, fast enough to sit on every call.

Built once per guardrail from its detectors. One combined prefilter, a trie of every detector's
trigger literals run over the lowercased text, finds where a secret could be; a detector then
runs only on the lines where one of its triggers occurs (and, if it says so, is followed by what
its pattern needs next, such as an assignment). Clean text costs one pass of the prefilter and
almost no per-detector calls, which matters as much as the pass itself: chat texts are short.

Secrets are found in the text as it will be read, not as it is spelt: characters that render as
nothing are left out and the rest is NFKC-normalised (fullwidth ``ｓｋ－`` reads ``sk-``), so
neither hides a secret; what is redacted is the original span, the hiding characters with it.
ASCII text, and non-ASCII text already normalised and without invisible characters (most of
it, CJK included), is scanned as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from detect_secrets.filters.heuristic import (
    is_potential_uuid,
    is_prefixed_with_dollar_sign,
    is_sequential_string,
    is_templated_secret,
)

from .detector import Detector

REDACTED = "[REDACTED]"

# detect-secrets' own heuristic filters, applied to every finding as its scan does.
_FILTERS = (is_sequential_string, is_potential_uuid, is_templated_secret,
            is_prefixed_with_dollar_sign)

# Some denylist patterns match the delimiter around a token (Artifactory: a leading space, '='
# or quote); the delimiter is not part of the secret.
_LEADING = " \t\r\n\"'=:"
_TRAILING = " \t\r\n\"'"

# Characters that render as nothing: pasted with a secret they leave it working, but split it.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]")

Line = tuple[int, int]
Trie = dict[str, "Trie"]


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    # Every type that found (part of) this span: overlapping findings are merged.
    types: frozenset[str]
    # Where the match that found it starts: the name before an assigned value, the "aws" that
    # makes a 40-character string an AWS secret. Finding it again needs the text from here.
    context: int


class Scanner:
    def __init__(self, detectors: Sequence[Detector]):
        self._always = [d for d in detectors if d.always]
        self._gated: dict[re.Pattern[str], list[Detector]] = {}
        by_trigger: dict[str, list[Detector]] = {}
        for detector in detectors:
            if detector.gate is not None:
                self._gated.setdefault(detector.gate, []).append(detector)
            for trigger in detector.triggers:
                by_trigger.setdefault(trigger, []).append(detector)
        # The prefilter reports the longest trigger at a position, so a trigger that is a
        # prefix of another (pass, password) wakes the detectors of both, each checked after
        # its own trigger's length.
        self._wakes = {
            literal: [(d, len(trigger)) for trigger, ds in by_trigger.items()
                      if literal.startswith(trigger) for d in ds]
            for literal in by_trigger
        }
        self._prefilter = re.compile(trie_pattern(by_trigger)) if by_trigger else None

    def find(self, text: str) -> list[Finding]:
        """Every secret in ``text`` as it will be read, overlapping findings merged, in order;
        positions are in ``text``."""
        read, origin = _as_read(text)
        findings = self._find(read)
        if origin is None:
            return findings
        return [Finding(origin[f.start], origin[f.end - 1] + 1, f.types, origin[f.context])
                for f in findings]

    def _find(self, text: str) -> list[Finding]:
        findings = [f for d in self._always for f in _run(d, text, 0)]
        for (start, end), detectors in self._triggered(text).items():
            line = text[start:end]
            findings += [f for d in detectors for f in _run(d, line, start)]
        return _merge(findings)

    def redact(self, text: str) -> tuple[str, list[str]]:
        """``text`` with each secret replaced by ``[REDACTED]``, and the secret types found."""
        findings = self.find(text)
        return apply(text, findings), types_of(findings)

    def _triggered(self, text: str) -> dict[Line, dict[Detector, None]]:
        """The lines holding a trigger or a gate's hit, with the detectors to run on each."""
        jobs: dict[Line, dict[Detector, None]] = {}
        whole = (0, len(text))
        for gate, detectors in self._gated.items():
            line = (0, -1)
            for gate_hit in gate.finditer(text):
                line = _line_at(text, gate_hit.start(), line)
                jobs.setdefault(line, {}).update(dict.fromkeys(detectors))
        if self._prefilter is None:
            return jobs
        lowered = text.lower()
        # A few characters lowercase to two (e.g. U+0130), shifting offsets; then each woken
        # detector runs on the whole text instead of a line.
        shifted = len(lowered) != len(text)
        line = whole if shifted else (0, -1)
        pos = 0
        while (hit := self._prefilter.search(lowered, pos)) is not None:
            at = hit.start()
            if not shifted:
                line = _line_at(text, at, line)
            for detector, length in self._wakes[hit.group()]:
                check = detector.after_trigger
                if check is None or check.match(lowered, at + length):
                    jobs.setdefault(whole if detector.multiline else line, {})[detector] = None
            # Resume one character on rather than after the hit: triggers may overlap.
            pos = at + 1
        return jobs


def _as_read(text: str) -> tuple[str, list[int] | None]:
    """``text`` without invisible characters and NFKC-normalised, with the position in ``text``
    each of its characters comes from; ``None`` for that when nothing changed."""
    if text.isascii() or (unicodedata.is_normalized("NFKC", text)
                          and not _INVISIBLE.search(text)):
        return text, None
    pieces: list[str] = []
    origin: list[int] = []
    for at, char in enumerate(text):
        if char.isascii():
            pieces.append(char)
            origin.append(at)
        elif not _INVISIBLE.match(char):
            read = unicodedata.normalize("NFKC", char)
            pieces.append(read)
            origin += [at] * len(read)
    return "".join(pieces), origin


def _line_at(text: str, at: int, last: Line) -> Line:
    """The line holding position ``at``; ``last`` when it holds it already."""
    if at <= last[1]:
        return last
    end = text.find("\n", at)
    return text.rfind("\n", 0, at) + 1, len(text) if end < 0 else end


def _run(detector: Detector, text: str, offset: int) -> Iterator[Finding]:
    for match in detector.pattern.finditer(text):
        span = next((match.span(g) for g in detector.groups if match.start(g) >= 0), None)
        if span is None:
            continue
        start, end = span
        if detector.groups == (0,):
            while start < end and text[start] in _LEADING:
                start += 1
            while end > start and text[end - 1] in _TRAILING:
                end -= 1
        value = text[start:end]
        if not value or any(f(value) for f in _FILTERS):
            continue
        if detector.accept is not None and not detector.accept(match, value):
            continue
        yield Finding(offset + start, offset + end, frozenset((detector.secret_type,)),
                      offset + match.start())


def _merge(findings: list[Finding]) -> list[Finding]:
    merged: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and f.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.start, max(last.end, f.end), last.types | f.types,
                                 min(last.context, f.context))
        else:
            merged.append(f)
    return merged


def apply(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with each finding (merged, in order) replaced by ``[REDACTED]``."""
    if not findings:
        return text
    out: list[str] = []
    pos = 0
    for f in findings:
        out += (text[pos:f.start], REDACTED)
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def types_of(findings: Iterable[Finding]) -> list[str]:
    return sorted({t for f in findings for t in f.types})


def trie_pattern(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, shaped as a trie: at each position the engine tests
    one branch per distinct next character instead of every word in turn."""
    root: Trie = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: Trie) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return emit(root)
