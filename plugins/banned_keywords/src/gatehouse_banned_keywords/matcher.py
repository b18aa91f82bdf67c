"""Finding any of many keywords in folded text, at a cost that does not grow with the list.

Two structures, each built once per guardrail:

* whole-word keywords that are a single word (``hello``, ``qwerty123``) go in a set; the text's
  words are cut out by one regex and checked against it with one C-level set operation. Neither
  step looks at the keywords, so 10,000 cost what 10 do.
* every other keyword (substring mode, and phrases or punctuation in word mode: ``bad word``,
  ``c++``, an emoji) goes in an Aho-Corasick automaton, which reads the text once whatever the
  number of keywords. In word mode each hit it reports is then checked for word boundaries.

A regex alternation of all keywords does neither: Python's engine tries the branches one after
another, and at 10,000 keywords it scans several times slower than at 10.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Literal

import ahocorasick  # type: ignore[import-not-found]  # ships no type stubs

from .folding import fold

Match = Literal["word", "substring"]

_WORD = re.compile(r"\w+")
# A word that starts at or after the position searched from, never the rest of one begun
# before it: the lookbehind still sees the text before that position.
_WORD_START = re.compile(r"(?<!\w)\w+")


def _is_word_char(char: str) -> bool:
    # What \w matches in a str pattern, so boundaries agree with the tokeniser above.
    return char.isalnum() or char == "_"


class KeywordMatcher:
    """Finds keywords in folded text and names them as they were configured.

    Keywords are folded like text (see :mod:`.folding`); two that fold alike are one keyword,
    reported as the first of them.
    """

    def __init__(self, keywords: Iterable[str], match: Match = "word"):
        self.match = match
        self._configured: dict[str, str] = {}
        for keyword in keywords:
            self._configured.setdefault(fold(keyword), keyword)
        self._configured.pop("", None)
        if not self._configured:
            raise ValueError("lists no keywords once invisible characters are dropped")
        folded = list(self._configured)
        self._words = frozenset(
            f for f in folded if match == "word" and _WORD.fullmatch(f))
        rest = [f for f in folded if f not in self._words]
        self._automaton: ahocorasick.Automaton | None = None
        if rest:
            automaton = ahocorasick.Automaton()
            for keyword in rest:
                automaton.add_word(keyword, keyword)
            automaton.make_automaton()
            self._automaton = automaton
        #: Longest keyword, in folded characters.
        self.longest = max(map(len, folded))
        #: Longest stretch of original text a keyword spelt as configured can span: text may
        #: write its accents as combining marks, which folding drops (``e`` + acute -> ``e``).
        #: Marks, invisible characters or whitespace added on top make the text longer still.
        self.longest_span = max(max(len(unicodedata.normalize("NFD", k)), len(f))
                                for f, k in self._configured.items())

    def find(self, text: str) -> str | None:
        """The configured keyword found in ``text`` (not folded), or None."""
        return self.search(fold(text))

    def search(self, folded: str, start: int = 0, growing: bool = False) -> str | None:
        """The configured keyword of a match in ``folded`` that begins at or after ``start``.

        ``folded[:start]`` is context only: it decides whether a match there starts a word.
        ``growing`` says more text may follow: in word mode a match is then reported only once
        the character after it is there, since ``hello`` may yet become ``hellos``.
        """
        if self._words:
            hit = self._search_words(folded, start, growing)
            if hit is not None:
                return self._configured[hit]
        if self._automaton is not None:
            hit = self._search_automaton(folded, start, growing)
            if hit is not None:
                return self._configured[hit]
        return None

    def _search_words(self, folded: str, start: int, growing: bool) -> str | None:
        words: list[str] = _WORD_START.findall(folded, start)
        # A word running to the end of a growing text may go on in the next piece.
        if growing and words and _is_word_char(folded[-1]):
            words.pop()
        if self._words.isdisjoint(words):
            return None
        return next(word for word in words if word in self._words)

    def _search_automaton(self, folded: str, start: int, growing: bool) -> str | None:
        assert self._automaton is not None
        size = len(folded)
        # The furthest a match may end and be decided now: in word mode on a growing text, the
        # character after it must be there too.
        limit = size - 1 if growing and self.match == "word" else size
        hits: Iterator[tuple[int, str]] = self._automaton.iter(folded, start)
        for last, keyword in hits:
            end = last + 1
            if end > limit:
                break  # hits come in order of their end, so none after this is decided either
            if self.match == "substring":
                return keyword
            begin = end - len(keyword)
            if (begin == 0 or not _is_word_char(folded[begin - 1])) and (
                    end == size or not _is_word_char(folded[end])):
                return keyword
        return None
