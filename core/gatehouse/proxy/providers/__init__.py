"""Upstream providers: how a call reaches a model.

A provider is a class registered by a plugin through ``register_providers`` under a prefix
(``openai``, ``mock``, ...). The gateway makes one instance per ``model_list`` entry at start-up,
handing it the entry's params and the gateway's one shared, pooled HTTP session.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, AsyncIterator

import orjson

if TYPE_CHECKING:
    import aiohttp

    from ...guardrails.call import Call
    from ...config.model_list import ModelParams

# Headers the call's trace adds to its upstream request (the traceparent), set by the tracing
# middleware in the request's context; None when calls are not traced.
UPSTREAM_HEADERS: ContextVar[Mapping[str, str] | None] = ContextVar("gatehouse_upstream_headers",
                                                                      default=None)
REMAINING = "x-ratelimit-remaining-"
RETRY_HEADERS = frozenset({"retry-after", "retry-after-ms"})
# Every upstream header is passed on under this prefix on a success, as LiteLLM does, within
# this many bytes: the reply's headers must stay small enough for any client to read.
PROVIDER_PREFIX = "llm_provider-"
MAX_PROVIDER_HEADER_BYTES = 2048
# Not passed on: how the upstream's connection was carried, which says nothing about the reply,
# the upstream's cookies (its sessions, not the client's), and what software it runs.
UNPASSED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                      "content-encoding", "set-cookie", "server"})
PATHS = {"chat_completion": "/chat/completions", "completion": "/completions",
         "embedding": "/embeddings", "moderation": "/moderations"}


def pass_through_headers(call: Call, headers: Mapping[str, str], *, ok: bool = True) -> None:
    """Give the client the upstream's rate-limit advice, where the gateway's own limits (set
    before the upstream was called) have not already said more; and when the upstream
    answered ``ok``, each of its headers as ``llm_provider-<name>``."""
    room = MAX_PROVIDER_HEADER_BYTES if ok else 0
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-ratelimit-") or lower in RETRY_HEADERS:
            call.response_headers.setdefault(lower, value)
            if lower.startswith(REMAINING):
                if call.upstream_remaining is None:
                    call.upstream_remaining = {}
                call.upstream_remaining[lower[len(REMAINING):]] = value
        if lower in UNPASSED:
            continue
        room -= len(PROVIDER_PREFIX) + len(lower) + len(value)
        if room >= 0:
            call.response_headers[PROVIDER_PREFIX + lower] = value


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a streamed call asks for the final usage chunk (``stream_options``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class UpstreamError(Exception):
    """The upstream failed; ``status`` and OpenAI-style ``body`` go to the client as they are."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body

    @classmethod
    def make(cls, status: int, message: str, kind: str = "upstream_error") -> UpstreamError:
        return cls(status, {"error": {"message": message, "type": kind, "param": None,
                                      "code": str(status)}})


class Reply:
    """An upstream's JSON reply, or one chunk of a streamed one: the raw bytes, parsed only
    when something needs the object (or handed over parsed by a provider that had to parse
    it), serialized only when something needs the bytes."""

    __slots__ = ("_raw", "_data")

    def __init__(self, raw: bytes | None = None, data: dict[str, Any] | None = None):
        self._raw = raw
        self._data = data

    def peek(self) -> dict[str, Any] | None:
        """The object, to read only, keeping the bytes it is sent as (None when they are not a
        JSON object); a later ``data`` reuses the parse."""
        if self._data is None:
            try:
                data = orjson.loads(self._raw)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(data, dict):
                return None
            self._data = data
        return self._data

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            try:
                data = orjson.loads(self._raw)
            except orjson.JSONDecodeError:
                raise UpstreamError.make(502, "upstream answered with malformed JSON") from None
            if not isinstance(data, dict):
                raise UpstreamError.make(502, "upstream answered with a non-object JSON body")
            self._data = data
        # Whoever asked may rewrite the object: from now on it is the truth.
        self._raw = None
        return self._data

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self._data)
        return self._raw


class Provider:
    """Base of every provider. Subclasses implement ``complete`` and ``stream``."""

    def __init__(self, model_name: str, params: ModelParams, http: aiohttp.ClientSession):
        self.model_name = model_name
        self.params = params
        self.http = http

    async def complete(self, call: Call) -> Reply:
        """Send a non-streamed call; return the reply or raise :class:`UpstreamError`."""
        raise NotImplementedError

    async def stream(self, call: Call) -> AsyncIterator[Reply]:
        """Start a streamed chat or completion call.

        Raises :class:`UpstreamError` before returning when the upstream refuses; otherwise
        returns an async iterator of each chunk (an SSE ``data:`` payload, a JSON object),
        without the final ``[DONE]``, as a :class:`Reply`. A provider that parsed a chunk (to
        check it is one) hands over both its bytes and the object, so that neither is made
        again: the bytes are what a client is sent when nothing reads the stream.
        """
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the provider holds beyond the shared HTTP session."""
