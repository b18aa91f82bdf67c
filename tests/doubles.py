"""A configurable guardrail type for core tests: it records every hook it runs and can block,
rewrite, crash or stall on demand."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from gatehouse import Guardrail, GuardrailAnswered, GuardrailBlocked, GuardrailParams, hookimpl
from gatehouse.guardrails.text import (request_slots, request_texts, response_slots,
                                       response_texts, rewrite)

EVENTS: list[tuple[str, str]] = []
RECORDS: list[dict[str, Any]] = []
# What a NewTexts guardrail was handed on each post_call_stream call: (done, new_texts).
NEW_TEXTS: list[tuple[bool, dict[Any, str]]] = []


class ProbeParams(GuardrailParams):
    block_word: str | None = None
    # With block_word: answer the call with this text instead of refusing it.
    answer: str | None = None
    append: str | None = None
    fail: Literal["crash", "stall"] | None = None
    mask: str | None = None
    # A during_call probe waits for this event before it finishes (to show concurrency).
    wait_for: Any = None
    # A pre_call probe first asks this vendor URL (its answer is kept in the run's record).
    vendor: str | None = None
    # A vendor credential besides api_key, which lists must mask too.
    access_token: str | None = None


class Probe(Guardrail):
    Params = ProbeParams
    default_modes = ("pre_call",)

    def _trouble(self) -> Any:
        if self.params.fail == "crash":
            raise RuntimeError("probe crashed")
        if self.params.fail == "stall":
            return asyncio.sleep(3600)
        return None

    def _check(self, texts: Any) -> None:
        word = self.params.block_word
        if word and any(word in text for text in texts):
            if self.params.answer is not None:
                raise GuardrailAnswered(self.params.answer, model="probe-answer")
            raise GuardrailBlocked(f"Probe {self.name} saw {word}",
                                   detail={"probe_response": {"word": word}})

    @hookimpl
    async def pre_call(self, call, extra_body):
        EVENTS.append((self.name, "pre_call"))
        if extra_body:
            EVENTS.append((self.name, f"extra_body={sorted(extra_body.items())}"))
        trouble = self._trouble()
        if trouble is not None:
            await trouble
        if self.params.vendor:
            await self.post_json(self.params.vendor, {"texts": [c[k] for c, k in request_slots(
                call.body)]}, {"x-api-key": self.api_key() or ""})
        self._check(c[k] for c, k in request_slots(call.body))
        if self.params.append:
            slots = list(request_slots(call.body))
            container, key = slots[-1]
            container[key] += self.params.append

    @hookimpl
    async def during_call(self, call):
        EVENTS.append((self.name, "during_call:start"))
        if self.params.wait_for is not None:
            await self.params.wait_for.wait()
        trouble = self._trouble()
        if trouble is not None:
            await trouble
        self._check(c[k] for c, k in request_slots(call.body))
        EVENTS.append((self.name, "during_call:end"))

    @hookimpl
    def post_call(self, call, response):
        EVENTS.append((self.name, "post_call"))
        self._check(c[k] for c, k in response_slots(response))
        if self.params.append:
            rewrite(response_slots(response), lambda text: text + self.params.append)

    @hookimpl
    def logging_only(self, record):
        EVENTS.append((self.name, "logging_only"))
        if self.params.mask:
            rewrite(request_slots(record["request"]),
                    lambda text: text.replace(self.params.mask, "****"))


class StreamProbe(Probe):
    """Checks streams chunk by chunk, holding back enough to catch ``block_word`` whole."""

    stream_holdback = 8

    @hookimpl
    def post_call_stream(self, chunk, stream):
        check_stream(self, stream)


def check_stream(guardrail: Guardrail, stream: Any) -> None:
    """Record the call and block on ``block_word`` in any text so far."""
    EVENTS.append((guardrail.name, "post_call_stream:done" if stream.done else
                   "post_call_stream"))
    word = guardrail.params.block_word
    if word and any(word in text for text in stream.all_texts.values()):
        raise GuardrailBlocked(f"Probe {guardrail.name} saw {word}")


class ChunkOnly(Guardrail):
    """Implements only ``post_call_stream``: blocks on ``block_word`` in the text so far and
    masks ``mask`` in each chunk's content."""

    Params = ProbeParams
    default_modes = ("post_call",)

    @hookimpl
    def post_call_stream(self, chunk, stream):
        check_stream(self, stream)
        if self.params.mask:
            for choice in chunk["choices"]:
                delta = choice["delta"]
                delta["content"] = delta["content"].replace(self.params.mask, "****")


class NewTexts(Guardrail):
    """Implements only ``post_call_stream``, noting what each call's ``new_texts`` held."""

    default_modes = ("post_call",)

    @hookimpl
    def post_call_stream(self, stream):
        NEW_TEXTS.append((stream.done, stream.new_texts))


class PreOnly(Guardrail):
    @hookimpl
    def pre_call(self, call):
        EVENTS.append((self.name, "pre_call"))


class CallbackPlugin:
    """A plugin module stand-in with global callbacks."""

    @hookimpl
    def on_success(self, call, record):
        RECORDS.append({"outcome": "success", **record})

    @hookimpl
    async def on_failure(self, record, error):
        RECORDS.append({"outcome": "failure", "error": error, **record})


class VendorCheck(Guardrail):
    """A vendor guardrail whose verdict depends only on its input (``cacheable``): it sends
    its vendor (``vendor`` param) the texts it is handed and the request's extra_body, blocks
    when the vendor answers ``flagged``, and masks the word the vendor names in ``mask``."""

    Params = ProbeParams
    cacheable = True
    vendor = "Check"

    async def _ask(self, texts: list[str], extra_body: Any) -> Any:
        answer = await self.post_json(self.params.vendor, {"texts": texts, "extra": extra_body})
        if answer.get("flagged"):
            raise GuardrailBlocked("Check flagged it", detail={"check_response": answer})
        return answer.get("mask")

    @hookimpl
    async def pre_call(self, call, extra_body):
        mask = await self._ask(list(request_texts(call.body)), extra_body)
        if mask:
            rewrite(request_slots(call.body), lambda text: text.replace(mask, "****"))

    @hookimpl
    async def post_call(self, response, extra_body):
        mask = await self._ask(list(response_texts(response)), extra_body)
        if mask:
            rewrite(response_slots(response), lambda text: text.replace(mask, "****"))


class ProbePlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("probe", Probe)
        register("stream_probe", StreamProbe)
        register("chunk_only", ChunkOnly)
        register("new_texts", NewTexts)
        register("pre_only", PreOnly)
        register("vendor_check", VendorCheck)


PLUGINS = [("probe-plugin", ProbePlugin()), ("callbacks", CallbackPlugin())]


def guardrail(name: str, mode: Any = "pre_call", type_: str = "probe", **params: Any
              ) -> dict[str, Any]:
    return {"guardrail_name": name, "params": {"guardrail": type_, "mode": mode, **params}}
