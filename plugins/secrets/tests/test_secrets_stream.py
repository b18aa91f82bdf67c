"""Streamed replies: however a secret is split across chunks, no part of it is sent."""

from __future__ import annotations

from typing import Any

from gatehouse_secrets.scanner import Scanner
from gatehouse_secrets.stream import StreamRedactor

TAIL = " -- keep it somewhere safe, and rotate it if it was ever shared."


def chunk(piece: str | None = None, *, finish: str | None = None, index: int = 0,
          **delta: Any) -> dict[str, Any]:
    if piece is not None:
        delta["content"] = piece
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def stream(scanner: Scanner, pieces: list[str]) -> list[str]:
    """What the client is sent for each upstream piece, then with the finishing chunk."""
    redactor = StreamRedactor(scanner)
    sent = []
    for piece in [*pieces, None]:
        c = chunk(piece, finish=None if piece is not None else "stop")
        redactor.feed(c)
        sent.append(c["choices"][0]["delta"].get("content", ""))
    assert redactor.holding == 0
    return sent


def splits(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def test_a_secret_split_anywhere_is_never_sent(scanner, sample):
    text = f"Sure, here it is: {sample.text}{TAIL}"
    expected = scanner.redact(text)[0]
    for at in range(1, len(text)):
        assert "".join(stream(scanner, [text[:at], text[at:]])) == expected, at
    for size in (1, 3, 7):
        assert "".join(stream(scanner, splits(text, size))) == expected, size


def test_a_pem_block_sent_line_by_line_goes_whole(scanner, pem_block):
    text = f"Here is the deploy key:\n{pem_block}\n{TAIL * 3}"
    sent = stream(scanner, text.splitlines(keepends=True))
    assert "".join(sent) == f"Here is the deploy key:\n[REDACTED]\n{TAIL * 3}"
    assert not any("MIIE" in piece or "PRIVATE" in piece for piece in sent)


def test_clean_text_streams_as_it_comes_not_at_the_end(scanner):
    text = "The quick brown fox jumps over the lazy dog. " * 20
    sent = stream(scanner, splits(text, 5))
    assert "".join(sent) == text
    first = next(i for i, piece in enumerate(sent) if piece)
    assert first < len(sent) // 3


def test_text_without_spaces_streams_too(scanner):
    text = "東京の天気は晴れです。明日は雨が降るでしょう。" * 12
    sent = stream(scanner, splits(text, 2))
    assert "".join(sent) == text
    assert any(sent[: len(sent) // 2])


def test_a_long_run_without_spaces_is_not_rescanned_per_chunk(scanner):
    scanned = []

    class Counting(Scanner):
        def find(self, text):  # type: ignore[override]
            scanned.append(len(text))
            return scanner.find(text)

    text = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 800 + TAIL
    redactor = StreamRedactor(Counting([]))
    for piece in splits(text, 4):
        redactor.feed(chunk(piece))
    redactor.feed(chunk(finish="stop"))
    assert sum(scanned) < 10 * len(text)


def test_a_long_run_without_spaces_is_not_copied_per_chunk(scanner):
    copied = []

    class Piece(str):
        # Python asks the right operand first when it is a subclass: this sees every
        # ``held + piece`` that copies what is held to append one piece.
        def __radd__(self, held: str) -> str:
            copied.append(len(held))
            return str(held) + str(self)

    text = "a" * 30_000
    redactor = StreamRedactor(scanner)
    for piece in splits(text, 3):
        redactor.feed(chunk(Piece(piece)))
    redactor.feed(chunk(finish="stop"))
    assert sum(copied) < 10 * len(text)


def test_tool_call_arguments_are_buffered_per_call(scanner):
    redactor = StreamRedactor(scanner)
    args = {0: '{"query": "weather in Paris"}',
            1: '{"api_key": "sk_1234567890abcdef", "note": "call the billing API"}'}
    sent: dict[int, str] = {0: "", 1: ""}
    chunks = [chunk(tool_calls=[{"index": i, "function": {"arguments": args[i][at:at + 6]}}])
              for i in (0, 1) for at in range(0, len(args[i]), 6)]
    for c in [*chunks, chunk(finish="tool_calls")]:
        redactor.feed(c)
        for call in c["choices"][0]["delta"].get("tool_calls", ()):
            sent[call["index"]] += call["function"]["arguments"]
    assert sent == {0: args[0],
                    1: '{"api_key": "[REDACTED]", "note": "call the billing API"}'}


def test_text_completions_and_several_choices(scanner):
    redactor = StreamRedactor(scanner)
    texts = {0: "first: password: Tr0ub4dor&3 and nothing else",
             1: "second: AKIAIOSFODNN7EXAMPLE is the key id"}
    sent = {0: "", 1: ""}
    for at in range(0, 50, 4):
        for i in (0, 1):
            c = {"choices": [{"index": i, "text": texts[i][at:at + 4], "finish_reason": None}]}
            redactor.feed(c)
            sent[i] += c["choices"][0]["text"]
    for i in (0, 1):
        c = {"choices": [{"index": i, "text": "", "finish_reason": "length"}]}
        redactor.feed(c)
        sent[i] += c["choices"][0]["text"]
    assert sent == {0: "first: password: [REDACTED] and nothing else",
                    1: "second: [REDACTED] is the key id"}


def test_types_are_reported_when_the_redacted_text_is_sent(scanner):
    redactor = StreamRedactor(scanner)
    first = chunk("my key is AKIAIOSFODNN7EXAMPLE")
    assert redactor.feed(first) == []
    last = chunk(finish="stop")
    assert redactor.feed(last) == ["AWS Access Key"]
