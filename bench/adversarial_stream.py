"""How the stream hooks of the bundled guardrails scale with the length of a streamed reply made
to be hard: zero-width spaces, combining marks, long runs of one character.

Each reply is fed in 3-character chunks, as the core does it: each chunk's text joins a
``StreamState`` and the chunk goes through the guardrail's ``post_call_stream`` hook; the last
chunk carries the ``finish_reason``, and the ``done`` call follows. Only the hook calls are
timed (CPU time): the core joins the text so far for ``stream.texts`` before the hook runs, and
that join is timed apart, on its own line, because it is the core's cost, not the guardrail's.

Figures are microseconds of CPU per kB (of UTF-8) of the reply, the best of a few runs, and each
as a ratio to the 10 kB figure of the same run: a scan linear in the text stays near 1.0 as the
reply grows; a quadratic one grows with it (about 10x at 100 kB).

    python bench/adversarial_stream.py
    python bench/adversarial_stream.py --kb 10 30 100 300 --repeats 5
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from gatehouse import Call, Guardrail, StreamState
from gatehouse_banned_keywords import BannedKeywords
from gatehouse_secrets.guardrail import HideSecrets

from benchkit import Table, arguments, count, cpu_seconds

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


def build(name: str) -> Callable[..., Any]:
    """A fresh guardrail's ``post_call_stream`` hook, called with the arguments it names."""
    kind, params = GUARDRAILS[name]
    guardrail = kind(name, kind.Params.model_validate(
        {"guardrail": name, "mode": ["post_call"], **params}))
    hook = guardrail.post_call_stream
    names = list(inspect.signature(hook).parameters)
    return lambda **args: hook(*[args[n] for n in names])


def stream_seconds(name: str | None, text: str) -> float:
    """CPU seconds in ``name``'s hook (or, for None, in the core's join of the text so far)
    over one stream of ``text``."""
    hook = build(name) if name is not None else None
    call = Call(request_id="bench", call_type="chat_completion", model="bench", body={},
                stream=True)
    state = StreamState()
    total = 0.0
    # Chunks are made as they are fed, not beforehand: thousands of live dicts would slow the
    # garbage collector's passes in proportion to the reply, as the core never does.
    for start in range(0, len(text), CHUNK):
        piece = text[start:start + CHUNK]
        state.add(0, piece)
        each = chunk(piece, "stop" if start + CHUNK >= len(text) else None)
        joined, _ = cpu_seconds(lambda: state.texts)
        if hook is None:
            total += joined
        else:
            total += cpu_seconds(partial(hook, call=call, chunk=each, stream=state,
                                         extra_body={}))[0]
    state.done = True
    if hook is not None:
        total += cpu_seconds(partial(hook, call=call, chunk={"choices": []}, stream=state,
                                     extra_body={}))[0]
    return total


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--kb", type=count, nargs="+", default=[10, 30, 100],
                        help="reply lengths in kB; the first is the baseline (default 10 30 100)")
    parser.add_argument("--repeats", type=count, default=3,
                        help="runs per figure; the best counts (default 3)")
    args = parser.parse_args()

    table = Table("<22", "<22", *[">12"] * len(args.kb))
    table.row("hook", "reply", *(f"{kb} kB" for kb in args.kb),
              tail="   ratio to " + f"{args.kb[0]} kB")
    for name in [*GUARDRAILS, None]:
        for kind in KINDS:
            per_kb = {kb: min(stream_seconds(name, reply(kind, kb)) for _ in range(args.repeats))
                      * 1e6 / kb for kb in args.kb}
            ratios = " ".join(f"{per_kb[kb] / per_kb[args.kb[0]]:.2f}" for kb in args.kb)
            table.row(name or "(core: stream.texts)", kind,
                      *(f"{per_kb[kb]:,.0f} us/kB" for kb in args.kb), tail=f"   {ratios}")


if __name__ == "__main__":
    main()
