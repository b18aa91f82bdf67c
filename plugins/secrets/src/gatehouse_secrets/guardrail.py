"""The ``hide-secrets`` guardrail: redacts secrets wherever text travels through a call."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from typing import Any, ClassVar

from gatehouse import Call, Guardrail, GuardrailParams, StreamState, hookimpl
from gatehouse.guardrails.text import (
    Group,
    joined,
    replace_spans,
    request_groups,
    response_groups,
)
from pydantic import ValidationInfo, field_validator

from .catalogue import build_detectors, resolve_paths
from .scanner import REDACTED, Finding, Scanner
from .stream import StreamRedactor

log = logging.getLogger("gatehouse.secrets")

#: Above this many characters in one hook, scanning moves to a worker thread: the event loop
#: keeps serving other calls, and the guardrail's timeout can fire.
THREAD_ABOVE = 64 * 1024


class HideSecretsParams(GuardrailParams):
    #: detect-secrets plugins to run, replacing the default set: ``[{"name": "AWSKeyDetector"},
    #: {"name": "KeywordDetector", "keyword_exclude": "..."}, ...]``. A baseline's
    #: ``{"plugins_used": [...]}`` is accepted as it is.
    detect_secrets_config: list[dict[str, Any]] | None = None

    @field_validator("detect_secrets_config", mode="before")
    @classmethod
    def _baseline_shape(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"plugins_used"}:
            return value["plugins_used"]
        return value

    @field_validator("detect_secrets_config")
    @classmethod
    def _plugins_exist(cls, value: list[dict[str, Any]] | None, info: ValidationInfo
                       ) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        resolved = resolve_paths(value, (info.context or {}).get("base_dir"))
        build_detectors(resolved)  # a bad entry fails at start-up, named, not on the first call
        return resolved


class HideSecrets(Guardrail):
    """Replaces every secret found with ``[REDACTED]``: in the request (``pre_call``), the reply
    (``post_call``, streams included) or only the log record (``logging_only``)."""

    Params: ClassVar[type[GuardrailParams]] = HideSecretsParams
    default_modes: ClassVar[tuple[str, ...]] = ("pre_call",)
    permission: ClassVar[str | None] = "hide_secrets"
    # Nothing fixed: StreamRedactor asks the core to hold, chunk by chunk, what may still be
    # part of a secret (stream.unsent.hold), which is often less than a fixed window would be.
    stream_holdback: ClassVar[int] = 0

    def __init__(self, name: str, params: GuardrailParams):
        super().__init__(name, params)
        assert isinstance(params, HideSecretsParams)
        self.scanner = Scanner(build_detectors(params.detect_secrets_config))

    @hookimpl
    async def pre_call(self, call: Call) -> None:
        await self._redact(request_groups(call.body))

    @hookimpl
    async def post_call(self, response: dict[str, Any]) -> None:
        await self._redact(response_groups(response))

    @hookimpl
    def post_call_stream(self, stream: StreamState) -> None:
        redactor = stream.scratch.get(self.name)
        if redactor is None:
            redactor = stream.scratch[self.name] = StreamRedactor(self.scanner)
        self._report(Counter(redactor.feed(stream)))

    @hookimpl
    async def logging_only(self, record: dict[str, Any]) -> None:
        await self._redact(chain(request_groups(record.get("request") or {}),
                                 response_groups(record.get("response") or {})))

    async def _redact(self, groups: Iterable[Group]) -> None:
        # A message's text parts are scanned joined: a secret split across two is still one.
        groups = list(groups)
        texts = list(map(joined, groups))
        if sum(map(len, texts)) > THREAD_ABOVE:
            # Only results cross back: if the timeout fires first, nothing is half-rewritten.
            found = await asyncio.to_thread(self._find_all, texts)
        else:
            found = self._find_all(texts)
        for group, findings in zip(groups, found):
            if findings:
                replace_spans(group, [(f.start, f.end) for f in findings], REDACTED)
        self._report(Counter(t for findings in found for f in findings for t in f.types))

    def _find_all(self, texts: list[str]) -> list[list[Finding]]:
        return [self.scanner.find(text) if text else [] for text in texts]

    def _report(self, types: Counter[str]) -> None:
        # Types only: the values are what this guardrail exists to keep out of logs. "Detected",
        # not "redacted": under enforce: false the core runs it on a copy and the call goes on
        # unchanged; the guardrail's record says whether its verdict was enforced.
        if types:
            log.warning("Detected %d secret(s) in message, of types %s",
                        sum(types.values()), sorted(types))
            self.report(masked=types)
