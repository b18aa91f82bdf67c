"""``lakera``: Lakera Guard's v2 guard API.

A flagged call is refused, unless everything Lakera found is PII with known spans: then the
spans are masked in place (``[MASKED EMAIL]``) and the call goes on. ``on_flagged: monitor``
only logs what Lakera flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from gatehouse import Call, GuardrailBlocked, GuardrailError, GuardrailParams, hookimpl
from pydantic import Field

from .common import LakeraGuardrail, LakeraParams, VendorReply
from .turns import Turn, conversation, reply_turn

log = logging.getLogger("gatehouse.lakera")

PII_PREFIX = "pii/"


class LakeraV2Params(LakeraParams):
    project_id: str | None = None
    on_flagged: Literal["block", "monitor"] = "block"


class Detection(VendorReply):
    detector_type: str
    message_id: int = 0
    start: int | None = None
    end: int | None = None


class Detector(VendorReply):
    detector_type: str
    detected: bool = False


class GuardReply(VendorReply):
    flagged: bool
    payload: list[Detection] = Field(default_factory=list)
    breakdown: list[Detector] = Field(default_factory=list)

    def detected(self) -> list[str]:
        return [*(d.detector_type for d in self.payload),
                *(d.detector_type for d in self.breakdown if d.detected)]

    def only_located_pii(self) -> bool:
        """Whether masking the payload's spans removes everything that was flagged."""
        detected = self.detected()
        return bool(self.payload) and all(t.startswith(PII_PREFIX) for t in detected) and all(
            d.start is not None and d.end is not None for d in self.payload)


class Lakera(LakeraGuardrail):
    Params = LakeraV2Params
    params: LakeraV2Params
    path = "/v2/guard"

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        # payload and breakdown are what masking and the PII-only test are read from.
        self._options = {"project_id": self.params.project_id, "payload": True,
                         "breakdown": True, "metadata": None, "dev_info": True}

    @hookimpl
    async def pre_call(self, call: Call) -> None:
        turns = conversation(call.body)
        await self._screen(turns, maskable=turns)

    @hookimpl
    async def during_call(self, call: Call) -> None:
        # The request is already on its way upstream: PII found now can no longer be masked.
        await self._screen(conversation(call.body), maskable=())

    @hookimpl
    async def post_call(self, call: Call, response: dict[str, Any]) -> None:
        reply = reply_turn(response)
        if not reply.text:
            return
        # The conversation gives Lakera context; only the reply can still be changed.
        await self._screen([*conversation(call.body), reply], maskable=(reply,))

    async def _screen(self, turns: list[Turn], *, maskable: Sequence[Turn]) -> None:
        if not turns:
            return
        raw, verdict = await self.post_checked(
            self._url, {"messages": [t.as_message() for t in turns], **self._options},
            self._headers, GuardReply)
        if not verdict.flagged:
            return
        if self.params.on_flagged == "monitor":
            log.warning("guardrail %r (monitor only): Lakera flagged the call (%s)",
                        self.name, ", ".join(sorted(set(verdict.detected()))) or "no details")
            return
        if verdict.only_located_pii():
            self._mask(turns, verdict.payload, maskable)
            return
        raise GuardrailBlocked("Violated guardrail policy",
                               detail={"lakera_guardrail_response": _without_matches(raw)})

    def _mask(self, turns: list[Turn], payload: list[Detection], maskable: Sequence[Turn]
              ) -> None:
        spans: dict[int, list[tuple[int, int, str]]] = {}
        for item in payload:
            if not 0 <= item.message_id < len(turns):
                # GuardrailFailed names the guardrail.
                raise GuardrailError(f"{self.path} reported PII in message {item.message_id} "
                                     f"of {len(turns)}")
            assert item.start is not None and item.end is not None  # only_located_pii()
            spans.setdefault(item.message_id, []).append(
                (item.start, item.end, mask_label(item.detector_type)))
        masked = 0
        for message_id, found in spans.items():
            turn = turns[message_id]
            if any(turn is m for m in maskable):
                turn.mask(found)
                masked += len(found)
        log.info("guardrail %r: masked %d of %d PII spans Lakera found", self.name, masked,
                 len(payload))


def mask_label(detector_type: str) -> str:
    """``pii/email`` -> ``[MASKED EMAIL]``."""
    return f"[MASKED {detector_type.removeprefix(PII_PREFIX).upper()}]"


def _without_matches(raw: dict[str, Any]) -> dict[str, Any]:
    """Lakera's reply minus the matched text of its payload: on a blocked reply that text is
    the very content being withheld from the client."""
    payload = raw.get("payload")
    if not isinstance(payload, list):
        return raw
    return {**raw, "payload": [
        {k: v for k, v in item.items() if k != "text"} if isinstance(item, dict) else item
        for item in payload]}
