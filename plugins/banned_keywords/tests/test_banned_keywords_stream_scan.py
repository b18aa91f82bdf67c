"""Scanning a reply that arrives in pieces: a keyword split across pieces is found, text that
merely begins like one is not, and what is found does not depend on where the pieces were cut."""

from __future__ import annotations

import itertools

import gatehouse_banned_keywords.stream as stream_module

import pytest
from gatehouse_banned_keywords.matcher import KeywordMatcher
from gatehouse_banned_keywords.stream import StreamScan


def feed_pieces(matcher: KeywordMatcher, pieces: list[str]) -> tuple[str | None, int]:
    """Feed pieces as the core does (the whole text so far each time, then once more when the
    stream is done); return the keyword found and how many pieces had arrived by then."""
    scan = StreamScan(matcher)
    text = ""
    for count, piece in enumerate(pieces, 1):
        text += piece
        found = scan.feed(text, done=False)
        if found:
            return found, count
    return scan.feed(text, done=True), len(pieces)


def test_a_keyword_split_across_pieces_is_found_once_it_is_whole():
    found, after = feed_pieces(KeywordMatcher(["hello"]), ["say hel", "lo", " world"])
    assert (found, after) == ("hello", 3)


def test_a_word_that_only_begins_like_a_keyword_is_not_blocked():
    assert feed_pieces(KeywordMatcher(["hello"]), ["say hel", "lo", "s all"]) == (None, 3)


def test_a_keyword_at_the_very_end_is_found_when_the_stream_is_done():
    assert feed_pieces(KeywordMatcher(["hello"]), ["say ", "hello"]) == ("hello", 2)


def test_a_combining_mark_in_the_next_piece_does_not_hide_the_keyword():
    matcher = KeywordMatcher(["hello"], "substring")
    assert feed_pieces(matcher, ["say hello", "\u0301 there"]) == ("hello", 1)
    assert feed_pieces(KeywordMatcher(["café"]), ["a cafe", "\u0301", "!"]) == ("café", 3)


REPLY = ("Ｓｏ, the ＳＴＲＡＳＳＥ near the cafe\u0301 had a bad word on it; "
         "othello said hi to everyone and e\u200bmail was down. 💩 happens.")
KEYWORDS = ["straße", "café", "bad word", "thell", "email", "💩", "word on", "absent"]


@pytest.mark.parametrize("mode", ["word", "substring"])
@pytest.mark.parametrize("keyword", KEYWORDS)
def test_what_is_found_does_not_depend_on_where_the_pieces_are_cut(mode, keyword):
    matcher = KeywordMatcher([keyword], mode)
    expected = matcher.find(REPLY)
    assert (expected is None) == (keyword == "absent" or (keyword, mode) == ("thell", "word"))
    for size in (1, 2, 3, 7):
        pieces = [REPLY[i:i + size] for i in range(0, len(REPLY), size)]
        assert feed_pieces(matcher, pieces)[0] == expected, size


def test_each_piece_is_scanned_in_time_that_does_not_grow_with_the_reply():
    matcher = KeywordMatcher(["needle"])
    scan = StreamScan(matcher)
    text = ""
    for piece in itertools.islice(itertools.cycle(["lorem ", "ipsum ", "dolor "]), 3000):
        text += piece
        assert scan.feed(text, done=False) is None
        # What is kept between pieces is a keyword's length, not the reply so far.
        assert len(scan.tail) <= matcher.longest + 1
        assert scan.received == len(text)
    assert scan.feed(text + "needle!", done=False) == "needle"


ADVERSARIAL = {
    "zero-width spaces": "\u200b",
    "combining marks": "a\u0301\u0302\u0303\u0304\u0305\u0306",
    "marks alone": "\u0301",
    "one letter": "a",
    "whitespace": " \t\n\u00a0",
}


@pytest.mark.parametrize("mode", ["word", "substring"])
@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_text_that_folds_to_little_is_folded_once_and_scanned_in_bounded_windows(
        monkeypatch, mode, kind):
    folded_chars: list[int] = []
    windows: list[int] = []

    fold = stream_module.fold

    def counting_fold(text: str) -> str:
        folded_chars.append(len(text))
        return fold(text)

    monkeypatch.setattr(stream_module, "fold", counting_fold)
    matcher = KeywordMatcher(["needle", "project falcon"], mode)
    search = matcher.search

    def counting_search(folded: str, start: int, growing: bool) -> str | None:
        windows.append(len(folded) - start)
        return search(folded, start, growing)

    monkeypatch.setattr(matcher, "search", counting_search)
    reply = ADVERSARIAL[kind] * (6000 // len(ADVERSARIAL[kind]))
    pieces = [reply[i:i + 3] for i in range(0, len(reply), 3)]
    assert feed_pieces(matcher, pieces) == (None, len(pieces))
    # Each character is folded once, and each scan covers the new piece and a keyword's
    # length before it, not the reply so far.
    assert sum(folded_chars) == len(reply)
    assert max(windows) <= matcher.longest + 3
