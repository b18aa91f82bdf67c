"""What counts as a keyword in text: whole words or substrings, after Unicode folding, named as
configured."""

from __future__ import annotations

import pytest
from gatehouse_banned_keywords.folding import fold, join_folded
from gatehouse_banned_keywords.matcher import KeywordMatcher


@pytest.mark.parametrize(("text", "found"), [
    ("hello world", "hello"),
    ("Hello!", "hello"),
    ("say HELLO.", "hello"),
    ("(hello)", "hello"),
    ("othello", None),
    ("hellos", None),
    ("hello_world", None),  # \w includes the underscore: one identifier, not the word
    ("hello2", None),
    ("shell", None),
])
def test_word_mode_finds_whole_words_only(text, found):
    assert KeywordMatcher(["hello"]).find(text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("othello", "hello"),
    ("HELLOS", "hello"),
    ("hell", None),
    ("h e l l o", None),
])
def test_substring_mode_finds_keywords_inside_words(text, found):
    assert KeywordMatcher(["hello"], "substring").find(text) == found


@pytest.mark.parametrize(("keyword", "text"), [
    ("hello", "ＨＥＬＬＯ world"),  # fullwidth letters
    ("ＨＥＬＬＯ", "hello world"),  # the keyword configured fullwidth
    ("straße", "STRASSE"),  # casefold, not lower: ß is ss
    ("café", "CAFE\u0301 au lait"),  # e + combining acute is é
    ("fish", "a \ufb01sh"),  # the fi ligature
    ("hello", "he\u200bllo and hel\u00adlo"),  # zero-width space, soft hyphen
    ("ﬃ", "FFI"),
])
def test_folding_makes_equivalent_spellings_match(keyword, text):
    assert KeywordMatcher([keyword]).find(text) == keyword


def test_the_keyword_is_reported_as_configured():
    matcher = KeywordMatcher(["Hello", "ＷＯＲＬＤ"])
    assert matcher.find("HELLO") == "Hello"
    assert matcher.find("the world") == "ＷＯＲＬＤ"


def test_keywords_that_fold_alike_are_reported_as_the_first():
    assert KeywordMatcher(["Hello", "HELLO", "hello"]).find("hello") == "Hello"


@pytest.mark.parametrize(("keyword", "text", "found"), [
    ("bad word", "such a bad word!", True),
    ("bad word", "bad words", False),
    ("bad word", "a badword", False),
    ("c++", "I write C++ daily", True),
    ("c++", "abc++", False),
    ("#secret", "tagged #secret today", True),
    ("💩", "well 💩 then", True),
    ("💩", "💩💩", True),  # an emoji is not a word character: no boundary to respect
    ("e-mail", "send an E-Mail.", True),
])
def test_phrases_and_punctuation_respect_word_boundaries(keyword, text, found):
    assert KeywordMatcher([keyword]).find(text) == (keyword if found else None)


def test_many_keywords_each_still_found():
    keywords = [f"kw{i:05d}" for i in range(10_000)] + ["needle phrase"]
    matcher = KeywordMatcher(keywords)
    assert matcher.find("nothing here kw1234 kw123456") is None
    assert matcher.find("is kw09999 here?") == "kw09999"
    assert matcher.find("a needle phrase.") == "needle phrase"
    substring = KeywordMatcher(keywords, "substring")
    assert substring.find("xkw00042x") == "kw00042"


def test_search_from_a_position_sees_the_context_before_it():
    matcher = KeywordMatcher(["hello", "lo wor"])
    folded = "othello world"
    # "hello" begins before the position and "lo wor" is not a whole word: nothing.
    assert matcher.search(folded, start=2) is None
    assert matcher.search("x hello", start=2) == "hello"


def test_a_growing_text_reports_only_what_more_text_cannot_change():
    matcher = KeywordMatcher(["hello", "bad word"])
    # The keyword runs to the end of what has arrived: "hellos" may follow.
    assert matcher.search("say hello", growing=True) is None
    assert matcher.search("say hello ", growing=True) == "hello"
    assert matcher.search("a bad word", growing=True) is None
    assert matcher.search("a bad word.", growing=True) == "bad word"
    assert matcher.search("a bad word") == "bad word"
    substring = KeywordMatcher(["hello"], "substring")
    assert substring.search("othello", growing=True) == "hello"


def test_keywords_that_fold_to_nothing_are_refused():
    with pytest.raises(ValueError, match="no keywords"):
        KeywordMatcher(["\u200b", ""])


def test_holdback_covers_a_keyword_spelt_with_combining_marks():
    matcher = KeywordMatcher(["café", "hello"])
    assert matcher.longest == 5
    assert matcher.longest_span == 5  # "cafe" + combining acute
    assert KeywordMatcher(["straße"]).longest_span == 7  # the text may spell ß as ss
    assert KeywordMatcher(["ệệ"]).longest_span == 6


FOLDED_IN_PIECES = ("Ｓo the  STRASSE\t\n near the cafe\u0301 \u200b said "
                    "hе\u200bllo — \u1100\u1161 ｶﾞ 日本 \u00a0 done ")


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_text_folded_in_pieces_reads_as_text_folded_whole(size):
    folded = ""
    for i in range(0, len(FOLDED_IN_PIECES), size):
        folded += join_folded(folded, fold(FOLDED_IN_PIECES[i:i + size]))
    assert folded == fold(FOLDED_IN_PIECES)


@pytest.mark.parametrize("spacing", [" ", "  ", "\t", "\n", " \r\n\t ", "\x0b\x0c\x1c",
                                     "\u00a0", "\u3000\u2028"])
def test_a_whitespace_run_folds_to_one_space_in_ascii_and_other_text(spacing):
    assert fold(f"a{spacing}b") == "a b"
    assert fold(f"\u00e9{spacing}b") == "e b"
    assert fold(f"{spacing}a{spacing}") == " a "
    assert fold(f"{spacing}\u00e9{spacing}") == " e "
    assert fold(spacing) == " "


EVADED = {
    "hello": ["h\u0435llo",  # Cyrillic ie
              "he\u04cf\u04cfo",  # Cyrillic palochkas
              "HΕLLО",  # Greek capital epsilon, Cyrillic capital o
              "hе\u0301l\u0300l\u0302o",  # marks on letters that have none
              "ｈｅ\u200bｌｌｏ"],
    "project falcon": ["project\nfalcon", "project\tfalcon", "project  falcon",
                       "project\u00a0falcon", "project \r\n\t falcon", "PROJECT FALCОN"],
    "competitor-x": ["competitor\u2013x", "competitor\u2014x", "competitor\u2212x",
                     "competitor\u2010x", "competitor\ufe63x", "competitor\uff0dx"],
    "café": ["cafe", "CAFE\u0301", "c\u0430f\u00e9"],
}


@pytest.mark.parametrize("match", ["word", "substring"])
@pytest.mark.parametrize(("keyword", "text"), [
    (keyword, text) for keyword, texts in EVADED.items() for text in texts])
def test_lookalikes_accents_dashes_and_spacing_do_not_hide_a_keyword(keyword, text, match):
    matcher = KeywordMatcher(list(EVADED), match)
    assert matcher.find(f"well, {text} then") == keyword


@pytest.mark.parametrize("text", [
    "Her naïve fiancée's résumé — a co-operation of 1990–2000, 3 − 2 = 1.",
    "project-falcon and project falcons",  # a dash is not a space; a longer word
    "competitor x, competitor-y, competitor—xs",
    "Ωmega, Ελλάδα, Москва: other scripts stay themselves",
])
def test_ordinary_accents_dashes_and_other_scripts_are_not_keywords(text):
    assert KeywordMatcher(list(EVADED)).find(text) is None
