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

Tool-call arguments are JSON text: :class:`ArgumentsScan` decodes their escapes
(:class:`Unescaped`) before the scan sees them, so ``competitor\u002dx`` is read as the model
reads it.
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


_SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                  "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(slots=True)
class Unescaped:
    """Streamed tool-call arguments -- JSON text -- as the model reads them: each piece's
    escapes (``\\u002d``, ``\\n``, ...) decoded as it comes, an escape cut by a chunk boundary
    kept until the next piece finishes it. Each character is looked at once."""

    # The start of an escape the last piece ended in.
    carry: str = ""

    def feed(self, piece: str, done: bool) -> str:
        text = self.carry + piece
        self.carry = ""
        out: list[str] = []
        start = 0
        while (slash := text.find("\\", start)) >= 0:
            out.append(text[start:slash])
            end, decoded = _escape_at(text, slash)
            if end is None:
                if not done:
                    self.carry = text[slash:]
                    return "".join(out)
                end, decoded = len(text), text[slash:]  # never finished: read as it is
            out.append(decoded)
            start = end
        out.append(text[start:])
        return "".join(out)


def _escape_at(text: str, slash: int) -> tuple[int | None, str]:
    """The end of the escape starting at ``text[slash]`` and what it stands for; None for an
    escape the text ends before finishing. Malformed escapes stand for themselves."""
    kind = text[slash + 1:slash + 2]
    if not kind:
        return None, ""
    if kind != "u":
        return slash + 2, _SHORT_ESCAPES.get(kind, text[slash:slash + 2])
    digits = text[slash + 2:slash + 6]
    if not set(digits) <= _HEX:
        return slash + 2, text[slash:slash + 2]
    if len(digits) < 4:
        return None, ""
    code = int(digits, 16)
    if 0xD800 <= code < 0xDC00:  # a high surrogate: its low half follows as an escape
        low = text[slash + 6:slash + 12]
        if len(low) < 6 and low[:2] == "\\u"[:len(low)] and set(low[2:]) <= _HEX:
            return None, ""  # the low half may be in the next piece
        low_code = int(low[2:], 16) if low[:2] == "\\u" and set(low[2:]) <= _HEX else 0
        if 0xDC00 <= low_code < 0xE000:
            return slash + 12, chr(0x10000 + ((code - 0xD800) << 10) + low_code - 0xDC00)
    return slash + 6, chr(code)


@dataclass(slots=True)
class ArgumentsScan:
    """One tool call's streamed arguments, scanned as the model reads them."""

    scan: StreamScan
    unescaped: Unescaped

    def feed(self, piece: str, done: bool) -> str | None:
        return self.scan.feed(self.unescaped.feed(piece, done), done)
