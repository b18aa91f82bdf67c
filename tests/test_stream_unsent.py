"""``stream.unsent``: a ``post_call_stream`` hook rewrites streamed text the client has not been
sent yet, so a word split across chunks is masked through the core's hold-back alone -- shown
over real HTTP, held to the guardrail contract, and kept from the client when the guardrail does
not enforce."""

from __future__ import annotations

from typing import Any

import pytest

from admin_kit import ADMIN, admin_get, both_backends, settle
from doubles import CallbackPlugin
from gatehouse import Guardrail, GuardrailParams, hookimpl
from gatehouse.guardrails.text import response_slots, rewrite
from gatehouse.testing import GuardrailContract
from gatehouse.testing.contracts import stream_content


class MaskParams(GuardrailParams):
    word: str = "falcon"


class UnsentMasker(Guardrail):
    """Masks ``word`` in the unsent text, holding back a word's length less one so that a word
    split across chunks is still whole in it."""

    Params = MaskParams
    default_modes = ("post_call",)

    def __init__(self, name: str, params: MaskParams):
        super().__init__(name, params)
        self.word = params.word
        self.stream_holdback = len(self.word) - 1

    def _mask(self, text: str) -> str:
        return text.replace(self.word, "*" * len(self.word))

    @hookimpl
    def post_call(self, response: dict[str, Any]) -> None:
        rewrite(response_slots(response), self._mask)

    @hookimpl
    def post_call_stream(self, stream) -> None:
        for key in list(stream.unsent):
            if self.word in stream.unsent[key]:
                stream.unsent[key] = self._mask(stream.unsent[key])


class ChunkMasker(UnsentMasker):
    """Masks ``word`` in each chunk's own text: the hold-back delays it, but text a chunk has
    handed over is out of its reach, so a split word leaks."""

    @hookimpl
    def post_call_stream(self, chunk: dict[str, Any]) -> None:
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                delta["content"] = self._mask(delta["content"])


class MaskerPlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("unsent_masker", UnsentMasker)
        register("chunk_masker", ChunkMasker)


PLUGINS = [("maskers", MaskerPlugin()), ("callbacks", CallbackPlugin())]


class TestUnsentMaskerHonoursTheContract(GuardrailContract):
    plugin = MaskerPlugin()
    guardrail_type = "unsent_masker"
    modes = ("post_call",)
    rewritten_reply = "The falcon has landed; the falcon is safe."


class ChunkMaskerContract(GuardrailContract):
    plugin = MaskerPlugin()
    guardrail_type = "chunk_masker"
    modes = ("post_call",)
    rewritten_reply = "The falcon has landed; the falcon is safe."


async def test_the_contract_catches_a_guardrail_that_rewrites_only_within_chunks(
        gateway, fake_upstream):
    contract = ChunkMaskerContract()
    start = ChunkMaskerContract.start.__wrapped__(contract, gateway, {}, {})
    with pytest.raises(AssertionError):
        await contract.test_rewrites_a_stream_as_a_whole_reply_whatever_its_chunks(
            start, fake_upstream)


def masker(name: str, type_: str = "unsent_masker", **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "params": {"guardrail": type_, "mode": "post_call",
                                               "default_on": True, **params}}


async def streamed(launch, fake_upstream, pieces: list[str], *guardrails: dict[str, Any]):
    """The text a client got when the upstream streamed ``pieces`` through a gateway ``launch``
    started, that gateway's test client, and the call's request id."""
    client = await launch({"guardrails": list(guardrails)}, plugins=PLUGINS)
    fake_upstream.chunks = pieces
    resp = await client.post("/v1/chat/completions", headers=ADMIN, json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True}})
    assert resp.status == 200, await resp.text()
    text = stream_content(await resp.text())
    await settle(client)
    return text, client, resp.headers["x-request-id"]


@pytest.mark.parametrize("pieces", [
    ["The fal", "con has landed."],
    ["The f", "a", "lc", "on has landed."],
    ["The fa", "l", "c", "o", "n has landed."],
])
async def test_a_word_split_across_chunks_is_masked_in_what_the_client_gets(
        gateway, fake_upstream, pieces):
    sent, _, _ = await streamed(gateway, fake_upstream, pieces, masker("mask"))
    assert sent == "The ****** has landed."


async def test_a_chunk_rewriting_guardrail_after_it_still_sees_the_chunks_new_text(
        gateway, fake_upstream):
    # The first guardrail's rewrite spans the held text and this chunk's; the second rewrites
    # only chunks, and must still be handed the chunk's text after the rewritten word.
    sent, _, _ = await streamed(gateway, fake_upstream, ["the fal", "con and the eagle fly"],
                                masker("falcon"), masker("eagle", "chunk_masker", word="eagle"))
    assert sent == "the ****** and the ***** fly"


@both_backends
async def test_a_guardrail_that_does_not_enforce_changes_nothing_and_says_what_it_would_have(
        start, fake_upstream):
    sent, client, request_id = await streamed(start, fake_upstream, ["The fal", "con has landed."],
                                              masker("mask", enforce=False))
    assert sent == "The falcon has landed."
    shown = await admin_get(client, f"/spend/logs/ui/{request_id}")
    [entry] = shown["metadata"]["guardrail_information"]
    assert (entry["guardrail_name"], entry["guardrail_status"], entry["enforced"]) == (
        "mask", "would_have_intervened", False)


async def test_a_non_streamed_reply_goes_through_a_hook_that_rewrites_unsent_text(
        gateway, fake_upstream):
    class StreamOnly(UnsentMasker):
        post_call = None  # type: ignore[assignment]

    class Plugin:
        @hookimpl
        def register_guardrails(self, register):
            register("stream_only", StreamOnly)

    client = await gateway({"guardrails": [masker("mask", "stream_only")]},
                           plugins=[("stream-only", Plugin())])
    fake_upstream.reply = "The falcon has landed."
    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert (await resp.json())["choices"][0]["message"]["content"] == "The ****** has landed."
