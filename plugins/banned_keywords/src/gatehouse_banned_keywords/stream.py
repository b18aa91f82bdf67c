"""Scanning a streamed reply as it grows, in time linear in its length.

Each piece of text is folded once, when it arrives: folding maps characters one by one (see
:mod:`.folding`), so nothing that comes later changes how earlier text folds. Each chunk's new
text is scanned together with a tail of the text before it, a keyword's length plus one
character of context, so that a keyword begun in an earlier chunk is finished by this one. No
chunk costs more than its own text and that tail, whatever was streamed before: a reply of
invisible characters or combining marks, which fold to nothing, costs no more than any other.

In word mode a keyword at the very end of the text so far is reported only once the character
after it is there (or the stream is done), so text that goes on (``hello`` becoming ``hellos``)
is never blocked early; the core's hold-back keeps it from the client meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from .folding import fold, join_folded
from .matcher import KeywordMatcher


@dataclass(slots=True)
class StreamScan:
    """One text of a stream (a choice's content, or a tool call's arguments) as scanned so
    far."""

    matcher: KeywordMatcher
    # The end of the folded text: a keyword's length, plus one character of context.
    tail: str = ""

    def feed(self, piece: str, done: bool) -> str | None:
        """The configured keyword found once ``piece``, the text that came next, joins what
        came before, or None.

        ``done`` says no more text will come, so everything fed is final.
        """
        window = self.tail + join_folded(self.tail, fold(piece))
        longest = self.matcher.longest
        hit = self.matcher.search(window, start=max(0, len(self.tail) - longest),
                                  growing=not done)
        self.tail = window[-(longest + 1):]
        return hit
