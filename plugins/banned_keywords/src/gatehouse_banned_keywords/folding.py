"""The one form keywords and text are compared in, and where text may be cut before folding.

Folding is NFKC, then casefold, then NFKC again (casefolding can leave text unnormalised), with
default-ignorable characters dropped first. So ``ＨＥＬＬＯ``, ``Hello`` and ``hel\u00adlo`` (a
soft hyphen inside) all read ``hello``, and ``Straße`` reads ``strasse``.

Folding changes lengths (``ß`` becomes ``ss``; ``e`` plus a combining acute becomes ``é``), so a
position in folded text is never mapped back to the original. A stream is folded piece by piece
instead, cut only at *seams*: places where folding the two sides apart gives the same text as
folding them together, whatever comes later.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode's Default_Ignorable_Code_Point: invisible characters that could split a keyword
# without changing what a reader sees.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# A character class rather than a str.translate table: the regex engine tests membership in a
# compiled set, several times faster than translate's per-character dict lookups.
_IGNORABLE = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}"
                                      for low, high in _IGNORABLE_RANGES) + "]")


def fold(text: str) -> str:
    """``text`` in the form keywords are matched in."""
    if text.isascii():
        # Nothing in ASCII is ignorable or changes under NFKC; this is the common case.
        return text.lower()
    text = _IGNORABLE.sub("", text)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def is_seam(left: str, right: str) -> bool:
    """Whether text may be folded in two pieces between the characters ``left`` and ``right``.

    It may when ``right`` folds to text that starts with a starter (combining class 0) and does
    not compose with ``left``: a starter composes only with the character just before it, and
    blocks combining marks from reordering across it, so nothing further away can interfere.
    """
    if right.isascii():
        return True
    folded_left, folded_right = fold(left), fold(right)
    # An ignorable folds to nothing and would let its neighbours meet; never cut beside one.
    return (bool(folded_left) and bool(folded_right)
            and unicodedata.combining(folded_right[0]) == 0
            and fold(left + right) == folded_left + folded_right)


def last_seam(text: str, start: int) -> int:
    """The last seam in ``text`` after ``start``, or ``start`` when there is none.

    The end of ``text`` is never a seam: the next character, not yet seen, may combine with it.
    """
    for cut in range(len(text) - 1, start, -1):
        if is_seam(text[cut - 1], text[cut]):
            return cut
    return start
