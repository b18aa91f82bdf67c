"""Scanning a streamed reply as it grows, in time linear in its length.

Rescanning the whole reply on every chunk would cost time quadratic in its length, so each
choice's text is folded and scanned piece by piece. Only text up to the last seam (see
:mod:`.folding`) is *settled*: it folds the same whatever arrives next. Settled text is kept
only as a tail long enough for a keyword that began in it to be finished by the next piece;
the rest is re-folded and re-scanned with each chunk until a seam passes it. A keyword is
reported only once it lies in settled text (in word mode, once the character after it is there
too), so text that goes on (``hello`` becoming ``hellos``) is never blocked early; the core's
hold-back keeps it from the client meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from .folding import fold, last_seam
from .matcher import KeywordMatcher


@dataclass(slots=True)
class StreamScan:
    """One choice's text as scanned so far."""

    matcher: KeywordMatcher
    # How much of the text is settled and already folded into ``tail``.
    settled: int = 0
    # The end of the folded settled text: a keyword's length, plus one character of context.
    tail: str = ""

    def feed(self, text: str, done: bool) -> str | None:
        """The configured keyword found in ``text`` (the choice's whole text so far), or None.

        ``done`` says no more text will come, so everything in it is final.
        """
        seam = len(text) if done else last_seam(text, self.settled)
        newly_settled = fold(text[self.settled:seam])
        window = self.tail + newly_settled + fold(text[seam:])
        longest = self.matcher.longest
        hit = self.matcher.search(window, start=max(0, len(self.tail) - longest),
                                  settled=None if done else len(self.tail) + len(newly_settled))
        self.tail = (self.tail + newly_settled)[-(longest + 1):]
        self.settled = seam
        return hit
