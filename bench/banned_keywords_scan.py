"""How fast the ``banned_keywords`` guardrail scans text with 10, 1,000 and 10,000 keywords, on
the same text in the same run, and how each list size compares with 10 keywords.

Text is generated (deterministic for a seed): pseudo-English prose, and the same prose with
non-ASCII sprinkled in (fullwidth words, accents written with combining marks, ligatures, CJK,
emoji), which takes the Unicode folding path. Keywords are made the same way as the prose's
words, so they share its letters and prefixes, and each list is checked to hold no match: a scan
that stopped at a hit would say nothing about speed. In word mode one keyword in twenty is a
two-word phrase, so both of the matcher's structures are timed.

Two workloads, both as the guardrail runs them:

* ``messages``: the text cut into 4 KB messages, each folded and scanned on its own;
* ``stream``: 64 KB replies fed to the stream scanner a few characters at a time, as chunks
  arrive, with the whole text so far each time (what the core hands ``post_call_stream``).

For comparison, the same messages (a smaller sample: it is slow) against what the matcher
replaces: one ``re`` alternation of all the keywords, longest first, compiled once.

Rates are MB (UTF-8) per second of CPU time of this single-threaded process, the best of a few
runs, so a busy machine moves them less than wall-clock rates.

    python bench/banned_keywords_scan.py                  # 4 MB of each text
    python bench/banned_keywords_scan.py --mb 16 --seed 3
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import partial

from gatehouse_banned_keywords.folding import fold
from gatehouse_banned_keywords.matcher import KeywordMatcher, Match
from gatehouse_banned_keywords.stream import StreamScan

from benchkit import (
    Table,
    add_text_options,
    arguments,
    best_cpu_seconds,
    cpu_seconds,
    megabytes,
    positive,
)

SIZES = (10, 1_000, 10_000)
MESSAGE = 4096
REPLY = 64 * 1024
PIECES = (3, 4, 5, 6, 7)

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v",
           "w", "br", "cl", "dr", "fl", "gr", "pl", "st", "tr", "sh", "ch", "th"]
_NUCLEI = ["a", "e", "i", "o", "u", "ea", "ou", "ai", "oo", "ie"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "rk", "ck"]


def make_word(rng: random.Random) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                   for _ in range(rng.choice((1, 1, 2, 2, 2, 3))))


def make_prose(rng: random.Random, size: int) -> str:
    vocabulary = sorted({make_word(rng) for _ in range(6000)})
    rng.shuffle(vocabulary)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf, like real text
    out: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(vocabulary, weights, k=rng.randint(6, 18))
        sentence = " ".join(words).capitalize() + rng.choice((". ", ", ", "? ", ".\n", "! "))
        out.append(sentence)
        total += len(sentence)
    return "".join(out)


def unicode_variant(rng: random.Random, prose: str) -> str:
    """The prose with about one word in eight respelt outside ASCII."""
    def respell(word: str) -> str:
        roll = rng.random()
        if roll < 0.02:
            return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c
                           for c in word.upper())  # fullwidth
        if roll < 0.06:
            return word.replace("e", "e\u0301").replace("o", "o\u0308")  # combining marks
        if roll < 0.08:
            return word.replace("fi", "\ufb01")
        if roll < 0.10:
            return word + " 東京の天気"
        if roll < 0.12:
            return word + " 🙂"
        return word
    return " ".join(respell(word) for word in prose.split(" "))


def keyword_lists(rng: random.Random, texts: list[str], match: Match
                  ) -> dict[int, list[str]]:
    """Keyword lists of each size, none of which the texts hold."""
    folded = [fold(text) for text in texts]
    whole_words = {word for f in folded for word in re.findall(r"\w+", f)}
    keywords: list[str] = []
    seen: set[str] = set()
    while len(keywords) < max(SIZES):
        keyword = make_word(rng)
        if match == "word" and len(keywords) % 20 == 0:
            keyword += " " + make_word(rng)
        if keyword in seen or len(keyword) < 4:
            continue
        seen.add(keyword)
        present = (keyword in whole_words if " " not in keyword and match == "word"
                   else any(keyword in f for f in folded))
        if not present:
            keywords.append(keyword)
    return {size: keywords[:size] for size in SIZES}


def cut(text: str, size: int) -> list[str]:
    """``text`` in pieces of about ``size`` characters, cut at spaces: a cut inside a word
    would make a new word, which might be a keyword."""
    pieces = []
    while text:
        end = text.rfind(" ", 0, size) if len(text) > size else -1
        end = len(text) if end <= 0 else end + 1
        pieces.append(text[:end])
        text = text[end:]
    return pieces


def scan_messages(matcher: KeywordMatcher, messages: list[str]) -> None:
    for message in messages:
        if matcher.find(message) is not None:
            raise AssertionError("the benchmark text holds a keyword")


def scan_streams(matcher: KeywordMatcher, replies: list[str]) -> None:
    rng = random.Random(0)
    for reply in replies:
        scan = StreamScan(matcher)
        so_far = ""
        end = 0
        while end < len(reply):
            step = rng.choice(PIECES)
            so_far += reply[end:end + step]
            end += step
            if scan.feed(so_far, done=False) is not None:
                raise AssertionError("the benchmark text holds a keyword")
        if scan.feed(so_far, done=True) is not None:
            raise AssertionError("the benchmark text holds a keyword")


def alternation(keywords: list[str], match: Match) -> Callable[[str], object]:
    """One regex of all keywords, searched in folded text: the simple alternative."""
    pattern = "|".join(map(re.escape, sorted(map(fold, keywords), key=len, reverse=True)))
    if match == "word":
        pattern = rf"(?<!\w)(?:{pattern})(?!\w)"
    return re.compile(pattern).search


def scan_with_alternation(search: Callable[[str], object], messages: list[str]) -> None:
    for message in messages:
        if search(fold(message)) is not None:
            raise AssertionError("the benchmark text holds a keyword")


def best_rates(works: dict[int, Callable[[], None]], pieces: list[str], repeats: int
               ) -> dict[int, float]:
    """MB per CPU second of each list size's work on ``pieces``, the best of ``repeats`` runs."""
    mb = megabytes(pieces)
    return {size: mb / seconds for size, (seconds, _) in best_cpu_seconds(works, repeats).items()}


def print_rates(table: Table, labels: tuple[str, str, str], rates: dict[int, float],
                digits: int) -> None:
    """One line of rates, then each as a ratio to the smallest list's."""
    ratios = " ".join(f"{rates[size] / rates[SIZES[0]]:.{digits + 1}f}" for size in SIZES)
    table.row(*labels, *(f"{rates[size]:.{digits}f} MB/s" for size in SIZES),
              tail=f"   {ratios}")


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--mb", type=positive, default=4.0,
                        help="MB of each text scanned as messages (default 4)")
    parser.add_argument("--stream-mb", type=positive, default=0.5,
                        help="MB of it fed as streams, a few characters a time (default 0.5)")
    parser.add_argument("--alternation-kb", type=positive, default=64,
                        help="KB of it scanned with a regex alternation instead (default 64)")
    add_text_options(parser, "--repeats")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    ascii_text = make_prose(rng, int(args.mb * 1e6))
    texts = {"ascii": ascii_text, "unicode": unicode_variant(rng, ascii_text)}
    workloads = {"messages": (scan_messages, MESSAGE, args.mb),
                 "stream": (scan_streams, REPLY, args.stream_mb)}

    table = Table("<10", "<9", "<10", *[">12"] * len(SIZES))
    table.row("mode", "text", "workload", *(f"{size:,} kw" for size in SIZES),
              tail="   ratio to 10 kw")
    for match in ("word", "substring"):
        lists = keyword_lists(rng, list(texts.values()), match)
        matchers = {}
        for size, keywords in lists.items():
            seconds, matchers[size] = cpu_seconds(partial(KeywordMatcher, keywords, match))
            print(f"# {match}: {size:,} keywords built in {seconds * 1000:.1f} ms CPU")
        for text_name, whole in texts.items():
            for workload_name, (workload, piece_size, mb) in workloads.items():
                pieces = cut(whole[:int(mb * 1e6)], piece_size)
                rates = best_rates({size: partial(workload, matcher, pieces)
                                    for size, matcher in matchers.items()},
                                   pieces, args.repeats)
                print_rates(table, (match, text_name, workload_name), rates, 1)
        messages = cut(texts["ascii"][:int(args.alternation_kb * 1e3)], MESSAGE)
        rates = best_rates({size: partial(scan_with_alternation, alternation(keywords, match),
                                          messages)
                            for size, keywords in lists.items()}, messages, 1)
        print_rates(table, (match, "ascii", "re alt."), rates, 2)


if __name__ == "__main__":
    main()
