"""Redacting a streamed reply before any part of a secret is sent, through the core's hold-back.

Each chunk, every text the chunk added to (a choice's content or refusal, a tool call's
arguments) is read as the core still holds it, unsent (``stream.unsent``); the secrets found in
the part of it that is final are redacted there, and the rest is held for the next chunk
(``stream.unsent.hold``):

* the last ``WINDOW`` characters stay back, so that the name of an assignment, or the header of a
  PEM block, is still unsent when the value or the key arrives;
* the cut falls just after a space (or a non-ASCII character, so that CJK replies still stream):
  the secrets found are runs of ASCII without spaces, so none is split;
* a secret found across or after the cut moves the cut before the match that found it, name and
  all: an unfinished PEM block, which runs to the end of the text, is held until its END line.

Once the upstream has finished (the ``done`` call) everything still unsent is final.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gatehouse import StreamState
from gatehouse.guardrails.call import TextKey

from .scanner import Finding, Scanner, apply, types_of

#: Characters held back at the end of each text. Covers a keyword assignment's name and
#: operator, a PEM header, and a quoted value with spaces of up to about 80 characters.
WINDOW = 96
#: Fewest new characters worth a rescan. A text that cannot be let go (a long run without
#: spaces, an unfinished PEM block) is rescanned only after growing by a quarter, so a long reply
#: costs linear rather than quadratic time.
STEP = 32

# The last place a cut may fall: just after whitespace or a non-ASCII character.
_LAST_BOUNDARY = re.compile(r".*[\s\x80-\U0010ffff]", re.DOTALL)


@dataclass(slots=True)
class _Progress:
    """Per text: characters received since it was last scanned, and how long it was then."""

    grown: int = 0
    scanned: int = 0


class StreamRedactor:
    """One stream's redaction state: only counters, the text itself stays with the core."""

    __slots__ = ("scanner", "progress")

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.progress: dict[TextKey, _Progress] = {}

    def feed(self, stream: StreamState) -> list[str]:
        """Redact what is final of ``stream.unsent`` in place and hold the rest; return the
        secret types redacted."""
        unsent, new = stream.unsent, stream.new_texts
        found: set[str] = set()
        for key in list(unsent) if stream.done else new:
            progress = self.progress.setdefault(key, _Progress())
            progress.grown += len(new.get(key, ""))
            if not stream.done and progress.grown < max(STEP, progress.scanned // 4):
                unsent.hold(key)
                continue
            text = unsent.get(key)
            if text is None:  # an earlier hook took the text out of the stream
                continue
            findings = self.scanner.find(text)
            cut = len(text) if stream.done else _cut(text, findings)
            progress.grown, progress.scanned = 0, len(text)
            final = [f for f in findings if f.end <= cut]
            if final:
                unsent[key] = apply(text[:cut], final) + text[cut:]
                found.update(types_of(final))
            unsent.hold(key, len(text) - cut)
        return sorted(found)


def _cut(text: str, findings: list[Finding]) -> int:
    """Where the final part of ``text`` ends."""
    cut = _boundary_before(text, len(text) - WINDOW)
    # A secret not wholly before the cut keeps the text it was found by: cutting between a name
    # and its value would leave a value nothing recognises any more.
    for f in reversed(findings):
        if f.end > cut:
            cut = min(cut, _boundary_before(text, f.context))
    return cut


def _boundary_before(text: str, limit: int) -> int:
    """The last place a cut may fall at or before ``limit``; 0 if there is none."""
    boundary = _LAST_BOUNDARY.match(text, 0, limit) if limit > 0 else None
    return boundary.end() if boundary else 0
