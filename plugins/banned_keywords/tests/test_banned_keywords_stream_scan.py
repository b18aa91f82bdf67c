"""Scanning a reply that arrives in pieces: a keyword split across pieces is found, text that
merely begins like one is not, and what is found does not depend on where the pieces were cut."""

from __future__ import annotations

import itertools
from typing import Any

import gatehouse_banned_keywords.stream as stream_module

import pytest
from gatehouse import GuardrailBlocked, StreamState
from gatehouse_banned_keywords import BannedKeywords
from gatehouse_banned_keywords.matcher import KeywordMatcher
from gatehouse_banned_keywords.stream import StreamScan, Unescaped


def feed_pieces(matcher: KeywordMatcher, pieces: list[str]) -> tuple[str | None, int]:
    """Feed pieces as the guardrail does (each piece as it comes, then nothing once the stream
    is done); return the keyword found and how many pieces had arrived by then."""
    scan = StreamScan(matcher)
    for count, piece in enumerate(pieces, 1):
        found = scan.feed(piece, done=False)
        if found:
            return found, count
    return scan.feed("", done=True), len(pieces)


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
    for piece in itertools.islice(itertools.cycle(["lorem ", "ipsum ", "dolor "]), 3000):
        assert scan.feed(piece, done=False) is None
        # What is kept between pieces is a keyword's length, not the reply so far.
        assert len(scan.tail) <= matcher.longest + 1
    assert scan.feed("needle!", done=False) == "needle"


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


class CountingState(StreamState):
    """The core's ``StreamState``, counting the characters of streamed text it hands a hook,
    whichever way the hook asks for them."""

    __slots__ = ("handed",)

    def __init__(self) -> None:
        super().__init__()
        self.handed = 0

    def _counted(self, texts: dict[Any, str]) -> dict[Any, str]:
        self.handed += sum(map(len, texts.values()))
        return texts

    @property
    def new_texts(self) -> dict[Any, str]:
        return self._counted(StreamState.new_texts.fget(self))

    @property
    def all_texts(self) -> dict[Any, str]:
        return self._counted(StreamState.all_texts.fget(self))

    @property
    def texts(self) -> dict[Any, str]:
        return self._counted(StreamState.texts.fget(self))

    def text_of(self, index: int) -> str:
        return self._counted({0: StreamState.text_of(self, index)})[0]

    def arguments_of(self, index: int) -> dict[Any, str]:
        return self._counted(StreamState.arguments_of(self, index))


def test_the_stream_hook_reads_each_character_of_a_long_reply_once():
    guardrail = BannedKeywords("no-greetings", BannedKeywords.Params.model_validate(
        {"guardrail": "banned_keywords", "mode": "post_call", "banned_keywords_list": ["hello"]}))
    content = "lorem ipsum " * 600 + "and then hel" + "lo again"
    arguments = '{"q": "' + "dolor sit " * 700 + '"}'
    state = CountingState()
    found = None
    for start in range(0, max(len(content), len(arguments)), 3):
        state.next_chunk()
        for tool, text in ((None, content), (0, arguments)):
            if text[start:start + 3]:
                state.add(0, text[start:start + 3], tool)
        try:
            guardrail.post_call_stream(stream=state)
        except GuardrailBlocked as blocked:
            found = blocked
            break
    # The keyword split across chunks is caught as soon as the character after it came ...
    assert found is not None and "Keyword=hello" in str(found)
    assert content[:start + 3].endswith("hello ")
    # ... and no character was handed to the hook twice: no chunk re-reads the reply so far.
    assert state.handed == len(content[:start + 3]) + len(arguments[:start + 3])


def test_the_done_call_finds_a_keyword_ending_any_text_of_the_stream():
    guardrail = BannedKeywords("no-greetings", BannedKeywords.Params.model_validate(
        {"guardrail": "banned_keywords", "mode": "post_call", "banned_keywords_list": ["hello"]}))
    state = StreamState()
    for content, arguments in (("fine ", '{"q": "hel'), ("text", 'lo')):
        state.next_chunk()
        state.add(0, content)
        state.add(0, arguments, tool=0)
        guardrail.post_call_stream(stream=state)  # "hello" may yet become "hellos"
    state.done = True
    state.next_chunk()
    assert state.new_texts == {}
    with pytest.raises(GuardrailBlocked, match="Keyword=hello"):
        guardrail.post_call_stream(stream=state)


ESCAPED = {
    '{"q": "competitor\\u002dx"}': '{"q": "competitor-x"}',
    '\\u0063\\u006F and \\\\u0041 and \\"quoted\\"': 'co and \\u0041 and "quoted"',
    'tab\\there\\nnewline \\/ slash': 'tab\there\nnewline / slash',
    'emoji \\ud83d\\udca9 and lone \\ud83d end': 'emoji \U0001f4a9 and lone \ud83d end',
    'bad \\uZZZZ and \\q kept': 'bad \\uZZZZ and \\q kept',
}


@pytest.mark.parametrize("raw", ESCAPED)
def test_streamed_arguments_are_unescaped_wherever_the_pieces_are_cut(raw):
    assert Unescaped().feed(raw, done=True) == ESCAPED[raw]
    for size in (1, 2, 3, 5, 7, 11):
        unescaped = Unescaped()
        pieces = [unescaped.feed(raw[i:i + size], done=False) for i in range(0, len(raw), size)]
        assert "".join(pieces) + unescaped.feed("", done=True) == ESCAPED[raw], size


def test_an_escape_the_stream_never_finished_is_read_as_it_is():
    unescaped = Unescaped()
    assert unescaped.feed("ask \\u00", done=False) == "ask "
    assert unescaped.feed("", done=True) == "\\u00"
