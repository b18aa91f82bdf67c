"""``output_parse_pii``: the numbered tokens (``<PERSON_1>``) that stand in for a call's PII on
its way upstream, and putting the originals back where the reply repeats a token."""

from __future__ import annotations

import re

# What could be a token: no spaces or angle brackets inside.
_TOKEN = re.compile(r"<[^<>\s]+>")


class Tokens:
    """One call's tokens. The same text of the same type gets the same token, so the model
    sees one person as one person; numbers run left to right across the whole request."""

    __slots__ = ("originals", "_by_text", "longest")

    def __init__(self) -> None:
        self.originals: dict[str, str] = {}
        self._by_text: dict[tuple[str, str], str] = {}
        self.longest = 0

    def token_for(self, entity: str, original: str) -> str:
        token = self._by_text.get((entity, original))
        if token is None:
            token = f"<{entity}_{len(self.originals) + 1}>"
            self._by_text[(entity, original)] = token
            self.originals[token] = original
            self.longest = max(self.longest, len(token))
        return token

    def restore(self, text: str) -> str:
        """``text`` with every token of this call replaced by its original."""
        if not self.originals or "<" not in text:
            return text
        return _TOKEN.sub(lambda m: self.originals.get(m.group(), m.group()), text)

    def final_up_to(self, text: str) -> int:
        """How much of streamed ``text`` can be restored and sent now: all of it, unless it ends
        in what may be the start of a token still arriving."""
        start = text.rfind("<")
        if start < 0 or ">" in text[start:] or len(text) - start >= self.longest:
            return len(text)
        tail = text[start:]
        return start if any(t.startswith(tail) for t in self.originals) else len(text)
