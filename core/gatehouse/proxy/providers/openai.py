"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, TGI, Azure-style proxies, ...)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, AsyncIterator

import aiohttp
import orjson

from ...guardrails.masking import mask
from ...plugins import hookimpl
from . import PATHS, UPSTREAM_HEADERS, Provider, Reply, UpstreamError, pass_through_headers

if TYPE_CHECKING:
    from ...guardrails.call import Call

DEFAULT_API_BASE = "https://api.openai.com/v1"
# Headers --detailed_debug shows as they are; any other may carry a credential, and is masked.
PLAIN_HEADERS = frozenset({"content-type", "traceparent"})

log = logging.getLogger("gatehouse.upstream")


class OpenAIProvider(Provider):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        base = (self.params.api_base or DEFAULT_API_BASE).rstrip("/")
        self._urls = {kind: base + path for kind, path in PATHS.items()}
        self._headers = {"content-type": "application/json", **self.params.headers}
        if self.params.api_key is not None:
            self._headers["authorization"] = f"Bearer {self.params.api_key.get_secret_value()}"
        self._timeout = aiohttp.ClientTimeout(total=self.params.timeout)
        # A stream may run long; what must not stall is each read.
        self._stream_timeout = aiohttp.ClientTimeout(sock_read=self.params.timeout)
        self._upstream_model = self.params.upstream_model

    async def _post(self, call: Call, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        body = orjson.dumps({**call.body, "model": self._upstream_model})
        url, headers = self._urls[call.call_type], self._headers
        if (traced := UPSTREAM_HEADERS.get()) is not None:
            headers = {**headers, **traced}
        if log.isEnabledFor(logging.DEBUG):
            log.debug("POST %s headers=%s body=%s", url,
                      {k: v if k in PLAIN_HEADERS else mask(v) for k, v in headers.items()},
                      body.decode(errors="replace"))
        try:
            resp = await self.http.post(url, data=body, headers=headers, timeout=timeout)
        except TimeoutError:
            raise UpstreamError.make(504, f"upstream for model {self.model_name!r} timed out",
                                     "timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError.make(
                502, f"upstream for model {self.model_name!r} is unreachable "
                     f"({type(exc).__name__})"
            ) from None
        pass_through_headers(call, resp.headers, ok=resp.status < 400)
        if resp.status >= 400:
            raw = await _read(resp, self.model_name)
            resp.release()
            raise UpstreamError(resp.status, _error_body(resp.status, raw))
        return resp

    async def complete(self, call: Call) -> Reply:
        resp = await self._post(call, self._timeout)
        try:
            return Reply(raw=await _read(resp, self.model_name))
        finally:
            resp.release()

    async def stream(self, call: Call) -> AsyncIterator[Reply]:
        resp = await self._post(call, self._stream_timeout)
        if resp.content_type == "text/event-stream":
            return _sse_payloads(resp, self.model_name)
        # Known before a byte of the stream is sent, so the client gets a plain error reply,
        # as for an upstream that refused.
        try:
            raw = await _read(resp, self.model_name)
        finally:
            resp.release()
        reply = _parsed_completion(raw, need_choices=True)
        if reply is None:
            raise UpstreamError.make(
                502, f"upstream for model {self.model_name!r} answered a stream request with "
                     f"{resp.content_type or 'an untyped body'}, not an event stream")
        # Some upstreams ignore ``stream`` and send the whole completion.
        return _replayed(_as_chunks(reply, call.call_type == "chat_completion"))


async def _read(resp: aiohttp.ClientResponse, model_name: str) -> bytes:
    try:
        return await resp.read()
    except TimeoutError:
        raise UpstreamError.make(504, f"upstream for model {model_name!r} timed out",
                                 "timeout") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError.make(
            502, f"upstream for model {model_name!r} broke off ({type(exc).__name__})"
        ) from None


def _error_body(status: int, raw: bytes) -> dict[str, Any]:
    """The upstream's OpenAI error body as it is, or one made from whatever else it sent."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), (dict, str)):
        return body
    return UpstreamError.make(status, f"upstream answered HTTP {status}").body


def _parsed_completion(raw: bytes, *, need_choices: bool) -> dict[str, Any] | None:
    """``raw`` parsed, if it is a completion or a chunk of one: a JSON object whose
    ``choices``, if any (a usage chunk has none), are objects."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    choices = data.get("choices")
    if choices is None and not need_choices:
        return data
    if not (isinstance(choices, list) and all(isinstance(c, dict) for c in choices)):
        return None
    return data


def _as_chunks(reply: dict[str, Any], chat: bool) -> list[dict[str, Any]]:
    """A whole completion as the stream that would have carried it: its choices in one chunk,
    then its usage in one of its own, as OpenAI sends it."""
    head = {key: reply[key] for key in ("id", "created", "model", "system_fingerprint")
            if key in reply}
    head["object"] = "chat.completion.chunk" if chat else "text_completion"
    choices = [{"index": choice.get("index", i), "delta": choice.get("message") or {},
                "finish_reason": choice.get("finish_reason")} if chat else choice
               for i, choice in enumerate(reply["choices"])]
    chunks = [{**head, "choices": choices}]
    if isinstance(reply.get("usage"), dict):
        chunks.append({**head, "choices": [], "usage": reply["usage"]})
    return chunks


async def _replayed(chunks: list[dict[str, Any]]) -> AsyncIterator[Reply]:
    for chunk in chunks:
        yield Reply(data=chunk)


async def _sse_payloads(resp: aiohttp.ClientResponse, model_name: str) -> AsyncIterator[Reply]:
    sent = False
    try:
        async for line in resp.content:
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event names
            payload = line[5:].strip()
            if payload == b"[DONE]":
                break
            if not payload:
                continue
            # Every reader downstream (the client's SDK, guardrails, spend) takes a chunk for
            # a JSON object; anything else is the upstream's fault, and is named as one.
            chunk = _parsed_completion(payload, need_choices=False)
            if chunk is None:
                raise UpstreamError.make(
                    502, f"upstream for model {model_name!r} sent a stream event that is not "
                         f"a completion chunk")
            sent = True
            yield Reply(raw=payload, data=chunk)
        if not sent:
            raise UpstreamError.make(
                502, f"upstream for model {model_name!r} ended the stream without a chunk")
    except TimeoutError:
        raise UpstreamError.make(504, f"upstream for model {model_name!r} stalled mid-stream",
                                 "timeout") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError.make(
            502, f"upstream for model {model_name!r} broke off mid-stream ({type(exc).__name__})"
        ) from None
    finally:
        resp.release()


@hookimpl
def register_providers(register):
    register("openai", OpenAIProvider)
