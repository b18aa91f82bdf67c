"""A streamed reply under ``presidio``: nothing is sent that could still need rewriting.

The texts of the stream (each choice's content and refusal, each of its tool calls' arguments)
stay with the core until they are final (``stream.unsent``, held with ``stream.unsent.hold``):

* when the reply itself is checked, nothing is final before the upstream has finished:
  Presidio's recognisers read a name or an address by its context, so each whole text is
  analysed once, masked and restored on the ``done`` call;
* when only tokens are restored, everything is final except a tail that may be the start of a
  token still arriving (``<PERS``), so a token split across chunks is restored whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gatehouse import StreamState

from .tokens import Tokens

#: Masks and restores the texts of a finished reply.
Finish = Callable[[list[str]], Awaitable[list[str]]]


async def mask_stream(stream: StreamState, *, hold_all: bool, tokens: Tokens | None,
                      finish: Finish) -> None:
    """Rewrite ``stream.unsent`` so that what is not held is final, masked and restored."""
    unsent = stream.unsent
    if stream.done:
        keys = list(unsent)
        for key, text in zip(keys, await finish([unsent[key] for key in keys])):
            unsent[key] = text
        return
    for key in [key for key in stream.new_texts if key in unsent]:
        if hold_all or tokens is None:
            unsent.hold(key)
            continue
        text = unsent[key]
        cut = tokens.final_up_to(text)
        restored = tokens.restore(text[:cut])
        if restored != text[:cut]:
            unsent[key] = restored + text[cut:]
        unsent.hold(key, len(text) - cut)
