"""The one form keywords and text are compared in.

Folding undoes the ways a keyword can be respelt without a reader noticing:

* compatibility forms and case: NFKD, then casefold, so ``ＨＥＬＬＯ`` and ``Hello`` read
  ``hello`` and ``Straße`` reads ``strasse``;
* accents and invisible characters: combining marks and default-ignorable characters (zero-width
  spaces, soft hyphens, joiners) are dropped, so ``café``, ``cafe\u0301`` and ``he\u200bllo``
  read ``cafe`` and ``hello``;
* lookalike letters: the Cyrillic and Greek letters drawn like a Latin one are that letter, so
  ``hеllo`` with a Cyrillic ``е`` reads ``hello``;
* dashes: every dash and minus sign reads ``-``;
* spacing: any run of whitespace (tabs, newlines, no-break spaces) reads as one space.

Every step but the last maps each character on its own, whatever its neighbours, and the last
only joins neighbouring whitespace. So text folded in pieces reads as text folded whole once a
space ending one piece and a space starting the next are made one (:func:`join_folded`): a
stream is folded as it arrives, never again.
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


def _mark_ranges() -> list[tuple[int, int]]:
    # Combining marks (categories Mn, Mc, Me) outside planes 0 and 1 are only the variation
    # selectors at E0100, already ignorable; scanning two planes keeps the import fast.
    ranges: list[tuple[int, int]] = []
    category = unicodedata.category
    for code in range(0x20000):
        if category(chr(code))[0] == "M":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return ranges


# Character classes rather than str.translate tables: the regex engine tests membership in a
# compiled bitmap, several times faster than translate's per-character dict lookups. A class
# holding characters beyond the BMP loses the bitmap, so those go through one range and a set.
# Dropping every mark also makes canonical reordering, NFKD's one step that looks at
# neighbours, moot.
_DROPPED_RANGES = (*_IGNORABLE_RANGES, *_mark_ranges())
_DROPPED = re.compile("[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _DROPPED_RANGES
                                    if high <= 0xFFFF) + "]|[\U00010000-\U0010FFFF]")
_DROPPED_ASTRAL = frozenset(chr(code) for low, high in _DROPPED_RANGES if high > 0xFFFF
                            for code in range(max(low, 0x10000), high + 1))


def _drop(found: re.Match[str]) -> str:
    char = found[0]
    return "" if char < "\U00010000" or char in _DROPPED_ASTRAL else char


# Letters drawn like a Latin letter, from Unicode's confusables.txt (UTS #39): the Cyrillic and
# Greek entries whose prototype is a single Latin letter, both cases, since casefolding comes
# after (Greek capital eta is an ``H``, but its lower case is not an ``h``).
_LOOKALIKES = {
    "A": "АΑ", "B": "ВΒ", "C": "СϹ", "E": "ЕΕ", "H": "НΗҺ", "I": "ІΙӀ", "J": "Ј", "K": "КΚ",
    "M": "МΜ", "N": "Ν", "O": "ОΟ", "P": "РΡ", "Q": "Ԛ", "S": "Ѕ", "T": "ТΤ", "W": "Ԝ",
    "X": "ХΧ", "Y": "УΥҮ", "Z": "Ζ",
    "a": "аα", "c": "сϲ", "d": "ԁ", "e": "е", "h": "һ", "i": "іι", "j": "ј", "k": "κ", "l": "ӏ",
    "o": "оο", "p": "рρ", "q": "ԛ", "s": "ѕ", "v": "ν", "w": "ԝ", "x": "хχ", "y": "у",
}
# Unicode's dash punctuation (category Pd) and the minus signs NFKD leaves alone.
_DASHES = ("\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e17\u2e1a"
           "\u2e3a\u2e3b\u2e40\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d"
           "\u2212\u02d7\u2796\U00010ead")
_RESPELT = {**{char: latin for latin, chars in _LOOKALIKES.items() for char in chars},
            **dict.fromkeys(_DASHES, "-")}
_RESPELLING = re.compile("[" + "".join(c for c in _RESPELT if c <= "\uffff") + "]"
                         + "".join(f"|{c}" for c in _RESPELT if c > "\uffff"))

# ASCII's whitespace other than the space, as str.isspace and str.split see it.
_ASCII_WHITESPACE = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", " "))


def fold(text: str) -> str:
    """``text`` in the form keywords are matched in."""
    if text.isascii():
        # Nothing in ASCII is dropped, decomposed or respelt; this is the common case. On ASCII
        # str.translate and str.replace run at C speed, twice the rate of _one_space.
        text = text.lower().translate(_ASCII_WHITESPACE)
        while "  " in text:
            text = text.replace("  ", " ")
        return text
    text = _RESPELLING.sub(_respelt, unicodedata.normalize("NFKD", text))
    text = unicodedata.normalize("NFKD", text.casefold())
    return _one_space(_DROPPED.sub(_drop, text))


def _one_space(text: str) -> str:
    # str.split finds whitespace runs three times as fast as a regex substitution does.
    words = text.split()
    if not words:
        return " " if text else ""
    return ((" " if text[0].isspace() else "") + " ".join(words)
            + (" " if text[-1].isspace() else ""))


def _respelt(found: re.Match[str]) -> str:
    return _RESPELT[found[0]]


def join_folded(before: str, after: str) -> str:
    """What is appended to folded text ``before`` when ``after`` is the fold of the text that
    follows it: a space ending one and a space starting the other are one run of whitespace."""
    if after.startswith(" ") and before.endswith(" "):
        return after[1:]
    return after
