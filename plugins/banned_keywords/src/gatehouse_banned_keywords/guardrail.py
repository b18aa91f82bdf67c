"""The ``banned_keywords`` guardrail: refuses a call whose request or reply holds a listed
keyword."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from gatehouse import (
    Call,
    Guardrail,
    GuardrailBlocked,
    GuardrailParams,
    StreamState,
    hookimpl,
)
from gatehouse.guardrails.text import request_texts, response_texts
from pydantic import PrivateAttr, ValidationInfo, field_validator, model_validator

from .keywords import clean_keywords, read_keyword_file
from .matcher import KeywordMatcher
from .stream import ArgumentsScan, StreamScan, Unescaped

#: Above this many characters in one hook, scanning moves to a worker thread, so that other
#: calls are served meanwhile and the guardrail's timeout can fire.
THREAD_ABOVE = 256 * 1024


class BannedKeywordsParams(GuardrailParams):
    #: The keywords, or the path of a text file with one per line (relative to the config
    #: file's folder).
    banned_keywords_list: list[str]
    #: ``word``: a keyword matches only as a whole word (``hello`` is not found in ``othello``);
    #: ``substring``: anywhere.
    match: Literal["word", "substring"] = "word"

    _matcher: KeywordMatcher = PrivateAttr()

    @field_validator("banned_keywords_list", mode="before")
    @classmethod
    def _read_file(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path((info.context or {}).get("base_dir") or Path.cwd()) / path
        return read_keyword_file(path)

    @field_validator("banned_keywords_list")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        return clean_keywords(value)

    @model_validator(mode="after")
    def _build_matcher(self) -> Self:
        # Built here rather than by the guardrail so a list that cannot be matched (keywords
        # made only of invisible characters) is a config error at start-up.
        self._matcher = KeywordMatcher(self.banned_keywords_list, self.match)
        return self

    @property
    def matcher(self) -> KeywordMatcher:
        return self._matcher


class BannedKeywords(Guardrail):
    """Blocks with ``400 Keyword banned. Keyword=<keyword>`` when the request (``pre_call``,
    ``during_call``) or the reply (``post_call``, streams included) holds a keyword."""

    Params: ClassVar[type[GuardrailParams]] = BannedKeywordsParams
    # LiteLLM's callback checks both ways; the callbacks shorthand keeps that.
    default_modes: ClassVar[tuple[str, ...]] = ("pre_call", "post_call")

    def __init__(self, name: str, params: GuardrailParams):
        super().__init__(name, params)
        assert isinstance(params, BannedKeywordsParams)
        self.matcher = params.matcher
        # The core reads this from the instance: the longest keyword differs per instance.
        self.stream_holdback = self.matcher.longest_span

    @hookimpl
    async def pre_call(self, call: Call) -> None:
        await self._check(request_texts(call.body))

    @hookimpl
    async def during_call(self, call: Call) -> None:
        await self._check(request_texts(call.body))

    @hookimpl
    async def post_call(self, response: dict[str, Any]) -> None:
        await self._check(response_texts(response))

    @hookimpl
    def post_call_stream(self, stream: StreamState) -> None:
        scans: dict[Any, StreamScan | ArgumentsScan] = stream.scratch.setdefault(self.name, {})
        # Every choice's content and refusal and every tool call's arguments: each is text the
        # client gets. Only this chunk's text is read; each scan keeps the tail it needs of what
        # came before.
        for key, text in stream.new_texts.items():
            scan = scans.get(key)
            if scan is None:
                scan = scans[key] = (
                    ArgumentsScan(StreamScan(self.matcher), Unescaped())
                    if isinstance(key[1], int) else StreamScan(self.matcher))
            _refuse(scan.feed(text, done=False))
        if stream.done:
            # No text comes with the done call: each scan's end is searched once more, now
            # that it can no longer grow.
            for scan in scans.values():
                _refuse(scan.feed("", done=True))

    async def _check(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        if sum(map(len, texts)) > THREAD_ABOVE:
            _refuse(await asyncio.to_thread(self._first_keyword, texts))
        else:
            _refuse(self._first_keyword(texts))

    def _first_keyword(self, texts: list[str]) -> str | None:
        # Each text on its own: a keyword must not be made of the end of one message and the
        # start of the next.
        return next(filter(None, map(self.matcher.find, texts)), None)


def _refuse(keyword: str | None) -> None:
    if keyword is not None:
        raise GuardrailBlocked(f"Keyword banned. Keyword={keyword}")
