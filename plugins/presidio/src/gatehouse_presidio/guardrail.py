"""``presidio``: finds PII with a Presidio analyzer and masks it (with the Presidio anonymizer,
or with numbered tokens that are put back into the reply) or refuses the call.

Each text is analysed as the model reads it: a message's text parts are one text, so an entity
split across two parts is still found; every text of a call is analysed concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from itertools import chain
from typing import Any, ClassVar

from gatehouse import (Call, Guardrail, GuardrailBlocked, GuardrailError, GuardrailParams,
                       StreamState, hookimpl)
from gatehouse.guardrails.text import (Group, joined, replace_spans, request_groups,
                                       response_groups, response_slots, rewrite)
from pydantic import BaseModel, ConfigDict

from .detections import Detection, Detections, Policy, disjoint
from .params import PresidioParams
from .stream import mask_stream
from .tokens import Tokens

log = logging.getLogger("gatehouse.presidio")

ACCEPT = {"accept": "application/json"}
ANALYZER_FAILED = ("Presidio analyzer returned invalid response; cannot verify PII when PII "
                   "protection is configured")
ANONYMIZER_FAILED = "Presidio PII anonymization failed"

# A text with what counts in it.
Finding = tuple[Group, str, list[Detection]]


class Anonymized(BaseModel):
    model_config = ConfigDict(strict=True)

    text: str


class Presidio(Guardrail):
    #: Not cacheable: a mask it makes is undone in the reply from per-call state the cache
    #: cannot replay.
    cacheable = False
    vendor = "Presidio"
    Params: ClassVar[type[GuardrailParams]] = PresidioParams
    params: PresidioParams
    # Nothing fixed: a stream's texts are held, chunk by chunk, as long as they may still need
    # masking or restoring (stream.unsent.hold); see stream.py.
    stream_holdback: ClassVar[int] = 0

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self.policy = Policy(self.params)
        self._analyze_url = f"{self.params.presidio_analyzer_api_base}analyze"
        self._anonymize_url = f"{self.params.presidio_anonymizer_api_base}anonymize"
        # Sent with every analysis; the request's extra_body may add to it, never replace it.
        self._asked: dict[str, Any] = {}
        if self.params.pii_entities_config is not None:
            self._asked["entities"] = list(self.params.pii_entities_config)
        if self.params.presidio_ad_hoc_recognizers is not None:
            self._asked["ad_hoc_recognizers"] = self.params.presidio_ad_hoc_recognizers

    # --- modes -----------------------------------------------------------------------------

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        if not self.params.checks_input:
            return
        findings = await self._find(_request_groups(call.body), call, extra_body)
        self._refuse_blocked(findings)
        tokens = Tokens() if self.params.output_parse_pii else None
        await self._mask(findings, tokens)
        if tokens is not None and tokens.originals:
            call.scratch[self.name] = tokens

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        # The request is already upstream: it can be refused, no longer masked.
        if self.params.checks_input:
            self._refuse_blocked(await self._find(_request_groups(call.body), call, extra_body))

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any],
                        extra_body: dict[str, Any]) -> None:
        if self.params.checks_output:
            findings = await self._find(response_groups(response), call, extra_body)
            self._refuse_blocked(findings)
            await self._mask(findings, None)
        tokens = call.scratch.get(self.name)
        if tokens is not None:
            rewrite(response_slots(response), tokens.restore)

    @hookimpl
    async def post_call_stream(self, call: Call, stream: StreamState,
                               extra_body: dict[str, Any]) -> None:
        tokens = call.scratch.get(self.name)
        if not self.params.checks_output and tokens is None:
            return

        async def finish(texts: list[str]) -> list[str]:
            return await self._final_reply(texts, call, extra_body, tokens)

        await mask_stream(stream, hold_all=self.params.checks_output, tokens=tokens,
                          finish=finish)

    @hookimpl
    async def logging_only(self, call: Call, record: dict[str, Any]) -> None:
        # Only the record is masked; nothing is refused, so BLOCK entities are masked too.
        scope = self.params.presidio_filter_scope
        groups = chain(_request_groups(record.get("request") or {}) if scope != "output" else (),
                       response_groups(record.get("response") or {}) if scope != "input" else ())
        await self._mask(await self._find(groups, call, call.guardrail_extra.get(self.name) or {}),
                         None)

    # --- the work --------------------------------------------------------------------------

    async def _final_reply(self, texts: list[str], call: Call, extra_body: dict[str, Any],
                           tokens: Tokens | None) -> list[str]:
        """A finished stream's held texts, checked and masked as a reply is, then restored."""
        if self.params.checks_output:
            holders = [{"text": text} for text in texts]
            findings = await self._find(([(h, "text")] for h in holders), call, extra_body)
            self._refuse_blocked(findings)
            await self._mask(findings, None)
            texts = [h["text"] for h in holders]
        return [tokens.restore(t) for t in texts] if tokens is not None else texts

    async def _find(self, groups: Iterable[Group], call: Call,
                    extra_body: dict[str, Any]) -> list[Finding]:
        """Each text that holds something that counts, analysed all at once."""
        language = self._language(call)
        pieces = [(group, text) for group in groups if (text := joined(group)).strip()]
        found = await asyncio.gather(*(self._analyze(text, language, extra_body)
                                       for _, text in pieces))
        return [(group, text, counted) for (group, text), detections in zip(pieces, found)
                if (counted := self.policy.counted(text, detections))]

    def _language(self, call: Call) -> str:
        for holder in (call.body, call.metadata):
            config = holder.get("guardrail_config")
            if isinstance(config, dict) and isinstance(config.get("language"), str):
                return config["language"]
        return self.params.presidio_language

    def _refuse_blocked(self, findings: list[Finding]) -> None:
        for _, _, counted in findings:
            entity = self.policy.blocked(counted)
            if entity is not None:
                raise GuardrailBlocked(
                    f"Blocked entity detected: {entity} by Guardrail: {self.name}. This entity "
                    f"is not allowed to be used in this request.")

    async def _mask(self, findings: list[Finding], tokens: Tokens | None) -> None:
        """Mask what was found, in place: with tokens when given, else by the anonymizer,
        one call per text part (an entity running across parts is masked in each)."""
        if not findings:
            return
        if tokens is not None:
            for group, text, counted in findings:
                spans = [(start, end, tokens.token_for(entity, text[start:end]))
                         for start, end, entity in disjoint(counted)]
                for start, end, token in reversed(spans):
                    replace_spans(group, [(start, end)], token)
        else:
            parts = [part for finding in findings for part in _parts(finding)]
            masked = await asyncio.gather(*(self._anonymize(container[key], results)
                                            for (container, key), results in parts))
            for ((container, key), _), text in zip(parts, masked):
                container[key] = text
        # Types and counts only: the values are what this guardrail keeps out of logs.
        counts = Counter(d.entity_type for _, _, counted in findings for d in counted)
        log.info("guardrail %r masked %s", self.name, dict(counts))
        self.report(response=[{"entity_type": d.entity_type, "start": d.start, "end": d.end,
                               "score": d.score} for _, _, counted in findings for d in counted],
                    masked=counts)

    async def _analyze(self, text: str, language: str,
                       extra_body: dict[str, Any]) -> list[Detection]:
        payload = {**extra_body, **self._asked, "text": text, "language": language}
        try:
            _, found_reply = await self.post_checked(self._analyze_url, payload, ACCEPT,
                                                     Detections)
            found = found_reply.root
        except GuardrailError as exc:
            raise GuardrailError(f"{ANALYZER_FAILED}: {exc}", timeout=exc.timeout) from None
        if any(not 0 <= d.start < d.end <= len(text) for d in found):
            raise GuardrailError(f"{ANALYZER_FAILED}: /analyze answered a span outside the text")
        return found

    async def _anonymize(self, text: str, results: list[dict[str, Any]]) -> str:
        try:
            _, reply = await self.post_checked(
                self._anonymize_url, {"text": text, "analyzer_results": results}, ACCEPT,
                Anonymized)
        except GuardrailError as exc:
            raise GuardrailError(f"{ANONYMIZER_FAILED}: {exc}", timeout=exc.timeout) from None
        return reply.text


def _request_groups(body: dict[str, Any]) -> Iterable[Group]:
    """The request's texts, less identifiers: the end-user id names the caller for budgets and
    spend, and a message's ``name`` must stay a name the upstream accepts (no ``<``)."""
    return (group for group in request_groups(body)
            if not (len(group) == 1 and (group[0][1] == "name"
                                         or (group[0][0] is body and group[0][1] == "user"))))


def _parts(finding: Finding) -> Iterable[tuple[tuple[Any, Any], list[dict[str, Any]]]]:
    """Each text part of a finding with the detections inside it, in the part's own offsets."""
    group, _, counted = finding
    offset = 0
    for container, key in group:
        end = offset + len(container[key])
        inside = [d.at(max(d.start, offset) - offset, min(d.end, end) - offset)
                  for d in counted if d.start < end and d.end > offset]
        if inside:
            yield (container, key), inside
        offset = end
