"""``mock/<name>``: answers offline, for examples, demos and tests.

The reply is the deployment's ``mock_response`` param when set, else an echo of the last user
message. A request's own ``mock_response`` field uses this provider for any model, so guardrails
can be tried without calling a real upstream.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from typing import TYPE_CHECKING, Any, AsyncIterator

import orjson

from ...config.model_list import ModelParams
from ...plugins import hookimpl
from ...guardrails.text import message_role_texts
from . import Provider, Reply, wants_usage

if TYPE_CHECKING:
    from ...guardrails.call import Call

_WORDS = re.compile(r"\S+\s*|\s+")
EMBEDDING_DIMENSIONS = 16


class MockProvider(Provider):
    def reply_text(self, call: Call) -> str:
        fixed = (self.params.model_extra or {}).get("mock_response")
        if isinstance(fixed, str):
            return fixed
        said = [text for _, text in message_role_texts(call.body)]
        return f"You said: {said[-1]}" if said else "Hello from the mock provider."

    async def complete(self, call: Call) -> Reply:
        if call.call_type == "embedding":
            return Reply(data=self._embedding(call))
        text = self.reply_text(call)
        return Reply(data=_completion(call, text, self.params.upstream_model,
                                      self.usage(call, text)))

    async def stream(self, call: Call) -> AsyncIterator[Reply]:
        text = self.reply_text(call)
        return _chunks(call, text, self.params.upstream_model, self.usage(call, text))

    def usage(self, call: Call, text: str) -> dict[str, int]:
        """Tokens counted as words, so spend can be tried offline."""
        prompt = sum(len(t.split()) for _, t in message_role_texts(call.body))
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _embedding(self, call: Call) -> dict[str, Any]:
        inputs = call.body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(orjson.dumps(item))}
            for i, item in enumerate(items)
        ]
        tokens = sum(len(str(item).split()) for item in items)
        return {"object": "list", "data": data, "model": self.params.upstream_model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class FixedReplyProvider(MockProvider):
    """Answers every call with one given text: serves a request's ``mock_response``."""

    def __init__(self, text: str, model_name: str, params: Any, http: Any):
        super().__init__(model_name, params, http)
        self._text = text

    def reply_text(self, call: Call) -> str:
        return self._text


class GuardrailAnswer(FixedReplyProvider):
    """Serves a guardrail's own answer (``GuardrailAnswered``): no model ran, so it uses no
    tokens."""

    def __init__(self, text: str, model: str):
        super().__init__(text, model, ModelParams(model=f"mock/{model}"), None)

    def usage(self, call: Call, text: str) -> dict[str, int]:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _vector(seed: bytes) -> list[float]:
    digest = hashlib.sha256(seed).digest()  # 32 bytes -> 16 unsigned shorts
    return [round(v / 65535 * 2 - 1, 6) for v in struct.unpack(">16H", digest)]


def _completion(call: Call, text: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    created = int(time.time())
    if call.call_type == "completion":
        return {"id": f"cmpl-{call.request_id}", "object": "text_completion", "created": created,
                "model": model, "usage": usage,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop",
                             "logprobs": None}]}
    return {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion",
            "created": created, "model": model, "usage": usage,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


async def _chunks(call: Call, text: str, model: str, usage: dict[str, int]
                  ) -> AsyncIterator[Reply]:
    created = int(time.time())
    chat = call.call_type == "chat_completion"
    base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{call.request_id}", "created": created,
            "model": model, "object": "chat.completion.chunk" if chat else "text_completion"}

    def chunk(piece: str | None, finish: str | None) -> Reply:
        if chat:
            delta = {} if piece is None else {"content": piece}
            if piece is not None and not first:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": piece or "", "finish_reason": finish, "logprobs": None}
        return Reply(data={**base, "choices": [choice]})

    first = False
    for piece in _WORDS.findall(text):
        yield chunk(piece, None)
        first = True
    yield chunk(None, "stop")
    if wants_usage(call.body):
        yield Reply(data={**base, "choices": [], "usage": usage})


@hookimpl
def register_providers(register):
    register("mock", MockProvider)
