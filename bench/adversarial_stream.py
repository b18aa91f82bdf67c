"""How the stream hooks of the bundled guardrails scale with the length of a streamed reply made
to be hard: zero-width spaces, combining marks, long runs of one character.

Each reply is fed in 3-character chunks through the core's own stream checks (``StreamGuard``,
as ``gatehouse.testing.streams`` builds it for one guardrail): each chunk's text joins the
``StreamState``, the guardrail's ``post_call_stream`` hook runs (under its timeout, recorded),
the hold-back and ``stream.unsent`` decide what is sent; the last chunk carries the
``finish_reason``, and the ``done`` call follows. The whole stream is timed (CPU time): the
hook and the core's work for it, hold-back included, since a guardrail that rewrites across
chunks has the core hold its text. When a hook reads the whole text so far (``stream.text``,
``texts``, ``all_texts``, ...), the core joins it for it; that join is timed apart, on its own
lines; a hook that reads only ``new_texts`` has no such line.

Figures are microseconds of CPU per kB (of UTF-8) of the reply, the best of a few runs, and each
as a ratio to the 10 kB figure of the same run: a scan linear in the text stays near 1.0 as the
reply grows; a quadratic one grows with it (about 10x at 100 kB).

    python bench/adversarial_stream.py
    python bench/adversarial_stream.py --kb 10 30 100 300 --repeats 5
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gatehouse import Guardrail, StreamState
from gatehouse.guardrails.call import TextKey
from gatehouse.testing.streams import stream_guard
from gatehouse_banned_keywords import BannedKeywords
from gatehouse_secrets.guardrail import HideSecrets

from benchkit import Table, arguments, count, cpu_seconds, run_async

CHUNK = 3

# What each reply is made of, repeated to its length.
KINDS = {
    "zero-width spaces": "\u200b",
    "combining marks": "a\u0301\u0302\u0303\u0304\u0305\u0306\u0307",
    "one letter": "a",
    "one non-ASCII letter": "é",
    "space runs": " \t\n\u00a0",
}

GUARDRAILS: dict[str, tuple[type[Guardrail], dict[str, Any]]] = {
    "banned_keywords": (BannedKeywords, {"banned_keywords_list": [
        "project falcon", "competitor-x", "hello", "café", "aaaab", "a\u0301a\u0301b"]}),
    "hide-secrets": (HideSecrets, {}),
}


def reply(kind: str, kb: int) -> str:
    unit = KINDS[kind]
    return unit * -(-kb * 1000 // len(unit.encode()))


def chunk(piece: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": finish}]}


def build(name: str) -> Guardrail:
    kind, params = GUARDRAILS[name]
    return kind(name, kind.Params.model_validate(
        {"guardrail": name, "mode": ["post_call"], **params}))


class TimedState(StreamState):
    """The core's ``StreamState``, counting the CPU time spent joining the text so far for the
    hooks that read it (every whole-text accessor goes through ``_text``): that is the core's
    work, not the guardrail's."""

    __slots__ = ("joining",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.joining = 0.0

    def _text(self, key: TextKey) -> str:
        seconds, text = cpu_seconds(partial(StreamState._text, self, key))
        self.joining += seconds
        return text


def stream_seconds(name: str, text: str) -> tuple[float, float]:
    """CPU seconds for one stream of ``text`` through the core's checks with ``name``'s hook,
    and of that, how much the core spent joining the text so far for the hook."""
    guard = stream_guard([build(name)])
    state = guard.state = TimedState(guard.unsent)
    chunks = [chunk(text[start:start + CHUNK], "stop" if start + CHUNK >= len(text) else None)
              for start in range(0, len(text), CHUNK)]

    async def stream() -> None:
        for each in chunks:
            await guard.feed(each)
        await guard.finish()

    total = cpu_seconds(partial(run_async, stream()))[0]
    return total - state.joining, state.joining


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--kb", type=count, nargs="+", default=[10, 30, 100],
                        help="reply lengths in kB; the first is the baseline (default 10 30 100)")
    parser.add_argument("--repeats", type=count, default=3,
                        help="runs per figure; the best counts (default 3)")
    args = parser.parse_args()

    table = Table("<28", "<22", *[">13"] * len(args.kb))
    table.row("hook", "reply", *(f"{kb} kB" for kb in args.kb),
              tail="   ratio to " + f"{args.kb[0]} kB")

    def row(label: str, kind: str, seconds: dict[int, float]) -> None:
        per_kb = {kb: seconds[kb] * 1e6 / kb for kb in args.kb}
        ratios = " ".join(f"{per_kb[kb] / per_kb[args.kb[0]]:.2f}" for kb in args.kb)
        table.row(label, kind, *(f"{per_kb[kb]:,.0f} us/kB" for kb in args.kb),
                  tail=f"   {ratios}")

    joins: dict[tuple[str, str], dict[int, float]] = {}
    for name in GUARDRAILS:
        for kind in KINDS:
            best = {kb: min(stream_seconds(name, reply(kind, kb)) for _ in range(args.repeats))
                    for kb in args.kb}
            row(name, kind, {kb: hook for kb, (hook, _) in best.items()})
            if all(join for _, join in best.values()):
                joins[name, kind] = {kb: join for kb, (_, join) in best.items()}
    for (name, kind), seconds in joins.items():
        row(f"core join ({name})", kind, seconds)


if __name__ == "__main__":
    main()
