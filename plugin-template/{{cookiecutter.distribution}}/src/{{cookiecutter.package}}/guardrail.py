"""The `{{ cookiecutter.type_name }}` guardrail: one worked example per event mode.

Edit the checks to fit your rules; the tests in tests/ say what each mode must do.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from gatehouse import Guardrail, GuardrailBlocked, GuardrailParams, hookimpl
from gatehouse.guardrails.text import request_slots, request_texts, response_slots, rewrite

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
# The end of a streamed text after its last space: maybe an email address still arriving.
LAST_WORD = re.compile(r"\S*\Z")
LONG_NUMBER = re.compile(r"\d(?:[ -]?\d){11,18}")


class {{ cookiecutter.class_name }}Params(GuardrailParams):
    """The guardrail's own config fields, under `params:` in config.yaml."""

    blocked_terms: list[str] = Field(default_factory=lambda: ["project-x"])
    email_mask: str = "[EMAIL]"


class {{ cookiecutter.class_name }}(Guardrail):
    Params = {{ cookiecutter.class_name }}Params
    default_modes = ("pre_call", "post_call")

    def __init__(self, name: str, params: {{ cookiecutter.class_name }}Params):
        super().__init__(name, params)
        # Built once here, never per call.
        self.terms = [term.lower() for term in params.blocked_terms]
        # Streamed text is held back this many characters so a term split across chunks is
        # caught before any of it reaches the client.
        self.stream_holdback = max((len(t) for t in self.terms), default=0)

    def _first_term_in(self, text: str) -> str | None:
        lowered = text.lower()
        return next((term for term in self.terms if term in lowered), None)

    @hookimpl
    def pre_call(self, call, extra_body: dict[str, Any]) -> None:
        """pre_call: refuse requests that mention a blocked term."""
        extra_terms = [t.lower() for t in extra_body.get("blocked_terms", [])]
        for text in request_texts(call.body):
            lowered = text.lower()
            term = self._first_term_in(text) or next(
                (t for t in extra_terms if t in lowered), None)
            if term:
                raise GuardrailBlocked(f"Blocked term: {term}",
                                       detail={"{{ cookiecutter.type_name }}": {"term": term}})

    @hookimpl
    def post_call(self, response: dict[str, Any]) -> None:
        """post_call: rewrite the reply, masking email addresses; refuse blocked terms."""
        for container, key in response_slots(response):
            term = self._first_term_in(container[key])
            if term:
                raise GuardrailBlocked(f"Blocked term in reply: {term}")
        rewrite(response_slots(response), lambda text: EMAIL.sub(self.params.email_mask, text))

    @hookimpl
    def post_call_stream(self, stream) -> None:
        """Stream check: stop before a term is sent, and mask emails as post_call does.

        Only each chunk's new text is scanned for terms (`stream.new_texts`, by choice and
        tool call), after the last `stream_holdback` characters of the text before it, kept in
        `stream.scratch`, so a term split across chunks is found and the work stays linear in
        the reply. (`stream.text` is the whole reply so far, but re-reading it every chunk is
        quadratic.)

        Emails are masked in `stream.unsent`: the text the gateway has received and not yet
        sent. What follows the last space may be an address still arriving, so it is held
        (`stream.unsent.hold`) until a space or the end of the stream (`stream.done`) comes."""
        tails: dict[Any, str] = stream.scratch.setdefault(self.name, {})
        for key, new in stream.new_texts.items():
            window = tails.get(key, "") + new
            term = self._first_term_in(window)
            if term:
                raise GuardrailBlocked(f"Blocked term in reply: {term}")
            tails[key] = window[-self.stream_holdback:] if self.stream_holdback else ""
        unsent = stream.unsent
        for key in list(unsent) if stream.done else [k for k in stream.new_texts if k in unsent]:
            text = unsent[key]
            final = len(text) if stream.done else LAST_WORD.search(text).start()
            masked = EMAIL.sub(self.params.email_mask, text[:final])
            if masked != text[:final]:
                unsent[key] = masked + text[final:]
            unsent.hold(key, len(text) - final)

    @hookimpl
    def logging_only(self, record: dict[str, Any]) -> None:
        """logging_only: mask card-like numbers in what is logged; the call itself keeps them."""
        rewrite(request_slots(record["request"]), lambda text: LONG_NUMBER.sub("[NUMBER]", text))
