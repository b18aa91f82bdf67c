"""Test doubles that speak the wire formats over real HTTP: an OpenAI-compatible upstream and a
guardrail vendor's API, each doing what a test tells it to."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
from typing import Any, Awaitable, Callable, Iterator

import orjson
from aiohttp import web

_PIECES = re.compile(r"\S+\s*|\s+")


class FakeUpstream:
    """An OpenAI-compatible upstream that does what a test tells it to."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reply = "Hello from the fake upstream."
        # When set, the reply text for each request body (overrides ``reply``).
        self.decide: Callable[[dict[str, Any]], str] | None = None
        self.chunks: list[str] | None = None  # explicit stream pieces; default: by word
        # Stream pieces of choices 1, 2, ... when a request asks for ``n`` > 1 (choice 0 has
        # ``chunks``); a choice without its own pieces repeats choice 0's.
        self.more_choices: list[list[str]] = []
        # Tool calls every chat choice makes instead of answering: (name, argument pieces).
        self.tool_calls: list[tuple[str, list[str]]] = []
        # Chat replies refuse: their text is the message's ``refusal``, not its content.
        self.refuses = False
        self.failure: tuple[int, bytes, str] | None = None
        # Sent with every answer, e.g. an upstream's x-ratelimit-* state or Retry-After.
        self.response_headers: dict[str, str] = {}
        self.delay = 0.0
        # Awaited after a request is recorded and before it is answered.
        self.before_reply: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.request_seen = asyncio.Event()
        self.url = ""  # set once served: base URL ending in /v1
        # Every reply gets its own id, as a real upstream's do.
        self._ids = itertools.count(1)
        self.app = web.Application()
        for path, kind in (("/v1/chat/completions", "chat"), ("/v1/completions", "text"),
                           ("/v1/embeddings", "embedding")):
            self.app.router.add_post(path, self._handler(kind))

    # -- what tests call ------------------------------------------------------------------------

    def fail(self, status: int, body: Any = None, *, content_type: str = "application/json"
             ) -> None:
        """Answer every request with ``status`` and ``body`` (a dict is sent as JSON)."""
        raw = body if isinstance(body, bytes) else orjson.dumps(body if body is not None else {
            "error": {"message": "upstream says no", "type": "server_error", "param": None,
                      "code": None}})
        self.failure = (status, raw, content_type)

    def model_entry(self, name: str = "gpt-4o", **params: Any) -> dict[str, Any]:
        """A ``model_list`` entry that routes ``name`` to this upstream."""
        return {"model_name": name, "params": {
            "model": f"openai/{name}", "api_base": self.url, "api_key": "sk-fake-upstream-key",
            **params}}

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    # -- serving --------------------------------------------------------------------------------

    def _handler(self, kind: str):
        async def handle(request: web.Request) -> web.StreamResponse:
            body = orjson.loads(await request.read())
            self.received.append(body)
            self.headers.append(dict(request.headers))
            self.request_seen.set()
            if self.before_reply is not None:
                await self.before_reply(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.failure is not None:
                status, raw, content_type = self.failure
                return web.Response(status=status, body=raw, content_type=content_type,
                                    headers=self.response_headers)
            if kind == "embedding":
                return self._json(_embedding(body))
            text = self.decide(body) if self.decide is not None else self.reply
            reply_id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-fake{next(self._ids)}"
            if body.get("stream"):
                return await self._stream(request, body, kind, text, reply_id)
            return self._json(self._completion(body, kind, text, reply_id))
        return handle

    def _json(self, body: dict[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json",
                            headers=self.response_headers)

    def _pieces(self, body: dict[str, Any], text: str) -> list[list[str]]:
        """Each choice's stream pieces, by choice index."""
        first = self.chunks if self.chunks is not None else _PIECES.findall(text)
        return [self.more_choices[i - 1] if 0 < i <= len(self.more_choices) else first
                for i in range(body.get("n") or 1)]

    def _completion(self, body: dict[str, Any], kind: str, text: str, reply_id: str
                    ) -> dict[str, Any]:
        reply = _completion(body, kind, text, reply_id)
        texts = ["".join(pieces) for pieces in self._pieces(body, text)]
        reply["choices"] = [{**reply["choices"][0], "index": i} for i in range(len(texts))]
        for choice, choice_text in zip(reply["choices"], texts):
            if kind == "text":
                choice["text"] = choice_text
            elif self.tool_calls:
                choice["finish_reason"] = "tool_calls"
                choice["message"] = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function",
                     "function": {"name": name, "arguments": "".join(pieces)}}
                    for i, (name, pieces) in enumerate(self.tool_calls)]}
            elif self.refuses:
                choice["message"] = {"role": "assistant", "content": None,
                                     "refusal": choice_text}
            else:
                choice["message"] = {"role": "assistant", "content": choice_text}
        return reply

    async def _stream(self, request: web.Request, body: dict[str, Any], kind: str, text: str,
                      reply_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream",
                                               **self.response_headers})
        await response.prepare(request)
        base = {"id": reply_id, "created": int(time.time()), "model": body["model"],
                "object": "chat.completion.chunk" if kind == "chat" else "text_completion"}
        # As OpenAI does: one choice per chunk, the choices' chunks interleaved.
        for choices in self._stream_choices(body, kind, text):
            for choice in choices:
                await response.write(b"data: " + orjson.dumps({**base, "choices": [choice]})
                                     + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"choices": [], "usage": _usage(text)}
            await response.write(b"data: " + orjson.dumps({**base, **usage}) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _stream_choices(self, body: dict[str, Any], kind: str, text: str
                        ) -> Iterator[list[dict[str, Any]]]:
        """The stream's choices, interleaved: the n-th item is every choice's n-th chunk."""
        per_choice = [list(self._choice_chunks(index, pieces, kind))
                      for index, pieces in enumerate(self._pieces(body, text))]
        for position in range(max(map(len, per_choice))):
            yield [chunks[position] for chunks in per_choice if position < len(chunks)]

    def _choice_chunks(self, index: int, pieces: list[str], kind: str
                       ) -> Iterator[dict[str, Any]]:
        if kind == "text":
            for piece in pieces:
                yield {"index": index, "text": piece, "finish_reason": None}
            yield {"index": index, "text": "", "finish_reason": "stop"}
            return
        if not self.tool_calls:
            field = "refusal" if self.refuses else "content"
            for i, piece in enumerate(pieces):
                delta = {"role": "assistant", field: piece} if i == 0 else {field: piece}
                yield {"index": index, "delta": delta, "finish_reason": None}
            yield {"index": index, "delta": {}, "finish_reason": "stop"}
            return
        yield {"index": index, "delta": {"role": "assistant", "content": None},
               "finish_reason": None}
        for t, (name, argument_pieces) in enumerate(self.tool_calls):
            yield {"index": index, "delta": {"tool_calls": [{
                "index": t, "id": f"call_{t}", "type": "function",
                "function": {"name": name, "arguments": ""}}]},
                "finish_reason": None}
            for piece in argument_pieces:
                yield {"index": index, "delta": {"tool_calls": [{
                    "index": t, "function": {"arguments": piece}}]},
                    "finish_reason": None}
        yield {"index": index, "delta": {}, "finish_reason": "tool_calls"}


def _usage(text: str) -> dict[str, int]:
    return {"prompt_tokens": 5, "completion_tokens": len(text.split()),
            "total_tokens": 5 + len(text.split())}


def _completion(body: dict[str, Any], kind: str, text: str, reply_id: str) -> dict[str, Any]:
    usage = _usage(text)
    if kind == "text":
        return {"id": reply_id, "object": "text_completion", "created": int(time.time()),
                "model": body["model"], "usage": usage,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop",
                             "logprobs": None}]}
    return {"id": reply_id, "object": "chat.completion", "created": int(time.time()),
            "model": body["model"], "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def _embedding(body: dict[str, Any]) -> dict[str, Any]:
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i in range(len(items))],
            "usage": {"prompt_tokens": len(items), "total_tokens": len(items)}}


#: The ways a vendor fails that every vendor guardrail must survive (see FakeVendor.break_as).
VENDOR_OUTAGES = ("http_500", "http_403", "refused", "timeout", "malformed_json")


class FakeVendor:
    """A guardrail vendor's HTTP API as a test wants it to behave, for any POST path.

    Records every request (``received`` bodies, their bytes in ``bodies``, ``paths``,
    lower-cased ``headers``) and answers
    ``decide(path, body)`` when set, else ``reply``; ``status`` sets the HTTP status, ``raw``
    sends bytes instead of JSON, ``stall`` holds requests until ``release`` is set (the fixture
    sets it at teardown), ``before_reply`` is awaited first.
    """

    def __init__(self, reply: Any = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.reply = reply if reply is not None else {}
        self.decide: Callable[[str, dict[str, Any]], Any] | None = None
        self.status = 200
        self.raw: bytes | None = None
        self.stall = False
        self.release = asyncio.Event()
        self.before_reply: Callable[[], Awaitable[None]] | None = None
        self.url = ""  # set once served: the base URL, without a trailing slash
        self.app = web.Application()
        self.app.router.add_post("/{path:.*}", self._handle)

    @property
    def last(self) -> dict[str, Any]:
        return self.received[-1]

    def break_as(self, how: str) -> str:
        """Make the vendor fail one of the ways in :data:`VENDOR_OUTAGES`; returns the
        ``api_base`` a guardrail should be given (a closed port for ``refused``)."""
        if how.startswith("http_"):
            self.status = int(how.removeprefix("http_"))
            self.reply = {"error": "vendor says no"}
        elif how == "refused":
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return f"http://127.0.0.1:{sock.getsockname()[1]}"
        elif how == "timeout":
            self.stall = True
        elif how == "malformed_json":
            self.raw = b'{"flagged": tr'
        else:
            raise ValueError(f"unknown outage {how!r}; one of {VENDOR_OUTAGES}")
        return self.url

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(raw)
        body = orjson.loads(raw)
        self.received.append(body)
        self.paths.append(request.path)
        # A header sent twice reads as a server reads it: its values joined.
        self.headers.append({k.lower(): ", ".join(request.headers.getall(k))
                             for k in request.headers})
        if self.before_reply is not None:
            await self.before_reply()
        if self.stall:
            await self.release.wait()
        raw = self.raw if self.raw is not None else orjson.dumps(
            self.decide(request.path, body) if self.decide is not None else self.reply)
        return web.Response(body=raw, status=self.status, content_type="application/json")
