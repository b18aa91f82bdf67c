"""Streamed replies through the core's hold-back: however a secret is split across chunks, no
part of it is sent."""

from __future__ import annotations

from typing import Any

from gatehouse_secrets import HideSecrets, HideSecretsParams
from gatehouse_secrets.scanner import Scanner
from gatehouse.testing.streams import sent_chunks, stream_guard, texts_of

TAIL = " -- keep it somewhere safe, and rotate it if it was ever shared."
MARGIN = 8


def chunk(piece: str | None = None, *, finish: str | None = None, index: int = 0,
          **delta: Any) -> dict[str, Any]:
    if piece is not None:
        delta["content"] = piece
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def hide_secrets(scanner: Scanner | None = None) -> HideSecrets:
    guardrail = HideSecrets("hide-secrets", HideSecretsParams.model_validate(
        {"guardrail": "hide-secrets", "mode": ["post_call"]}))
    if scanner is not None:
        guardrail.scanner = scanner
    return guardrail


async def stream(pieces: list[str], scanner: Scanner | None = None) -> list[str]:
    """What the client is sent after each upstream piece, then after the finishing chunk and
    the end of the stream."""
    chunks = [*(chunk(piece) for piece in pieces), chunk(finish="stop")]
    sent = await sent_chunks(stream_guard([hide_secrets(scanner)]), chunks)
    return [texts_of(out) for out in sent]


def splits(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


async def test_a_secret_split_anywhere_is_never_sent(scanner, sample):
    lead = "Sure, here it is: "
    text = f"{lead}{sample.text}{TAIL}"
    expected = scanner.redact(text)[0]
    # Every cut inside the secret and a word either side of it: a cut further off hands the
    # scanner the secret whole in one piece, as the nearest of these do.
    for at in range(len(lead) - MARGIN, len(lead) + len(sample.text) + MARGIN):
        assert "".join(await stream([text[:at], text[at:]])) == expected, at
    for size in (1, 3, 7):
        assert "".join(await stream(splits(text, size))) == expected, size


async def test_a_pem_block_sent_line_by_line_goes_whole(pem_block):
    text = f"Here is the deploy key:\n{pem_block}\n{TAIL * 3}"
    sent = await stream(text.splitlines(keepends=True))
    assert "".join(sent) == f"Here is the deploy key:\n[REDACTED]\n{TAIL * 3}"
    assert not any("MIIE" in piece or "PRIVATE" in piece for piece in sent)


async def test_clean_text_streams_as_it_comes_not_at_the_end():
    text = "The quick brown fox jumps over the lazy dog. " * 20
    sent = await stream(splits(text, 5))
    assert "".join(sent) == text
    first = next(i for i, piece in enumerate(sent) if piece)
    assert first < len(sent) // 3


async def test_text_without_spaces_streams_too():
    text = "東京の天気は晴れです。明日は雨が降るでしょう。" * 12
    sent = await stream(splits(text, 2))
    assert "".join(sent) == text
    assert any(sent[: len(sent) // 2])


async def test_a_long_run_without_spaces_is_not_rescanned_per_chunk(scanner):
    scanned = []

    class Counting(Scanner):
        def find(self, text):  # type: ignore[override]
            scanned.append(len(text))
            return scanner.find(text)

    text = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 800 + TAIL
    assert "".join(await stream(splits(text, 4), Counting([]))) == text
    assert sum(scanned) < 10 * len(text)


async def test_tool_call_arguments_are_held_per_call():
    args = {0: '{"query": "weather in Paris"}',
            1: '{"api_key": "sk_1234567890abcdef", "note": "call the billing API"}'}
    chunks = [chunk(tool_calls=[{"index": i, "function": {"arguments": args[i][at:at + 6]}}])
              for i in (0, 1) for at in range(0, len(args[i]), 6)]
    sent: dict[int, str] = {0: "", 1: ""}
    for out in await sent_chunks(stream_guard([hide_secrets()]),
                                 [*chunks, chunk(finish="tool_calls")]):
        for c in out:
            for call in c["choices"][0]["delta"].get("tool_calls", ()):
                sent[call["index"]] += call["function"]["arguments"]
    assert sent == {0: args[0],
                    1: '{"api_key": "[REDACTED]", "note": "call the billing API"}'}


async def test_text_completions_and_several_choices():
    texts = {0: "first: password: Tr0ub4dor&3 and nothing else",
             1: "second: AKIAIOSFODNN7EXAMPLE is the key id"}
    chunks = [{"choices": [{"index": i, "text": texts[i][at:at + 4], "finish_reason": None}]}
              for at in range(0, 50, 4) for i in (0, 1)]
    chunks += [{"choices": [{"index": i, "text": "", "finish_reason": "length"}]} for i in (0, 1)]
    sent = {0: "", 1: ""}
    for out in await sent_chunks(stream_guard([hide_secrets()], "completion"), chunks):
        for c in out:
            for choice in c["choices"]:
                sent[choice["index"]] += choice["text"]
    assert sent == {0: "first: password: [REDACTED] and nothing else",
                    1: "second: [REDACTED] is the key id"}


async def test_a_redacted_secret_is_counted_once_however_long_it_is_held(scanner):
    # Held back past its redaction (the whole text, by a guardrail that holds all), a redacted
    # secret is scanned again: it must not be counted again.
    counted = []
    guardrail = hide_secrets()
    guardrail.report = lambda **kw: counted.append(dict(kw["masked"]))  # type: ignore[method-assign]

    class HoldsAll(HideSecrets):
        def post_call_stream(self, stream):  # type: ignore[override]
            for key in stream.new_texts:
                stream.unsent.hold(key)

    holder = HoldsAll("holds-all", guardrail.params)
    text = f"my key id is AKIAIOSFODNN7EXAMPLE{TAIL * 4}"
    sent = await sent_chunks(stream_guard([guardrail, holder]),
                             [*(chunk(p) for p in splits(text, 5)), chunk(finish="stop")])
    assert "".join(texts_of(out) for out in sent) == scanner.redact(text)[0]
    assert counted == [{"AWS Access Key": 1}]
