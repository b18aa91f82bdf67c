"""Output checks on a stream: every chunk passes the ``post_call_stream`` hooks before it is
sent, and choice 0's content is held back by the largest ``stream_holdback`` among them, so a
match spanning chunks is stopped before any of it reaches the client. Guardrails with only a
``post_call`` hook see the assembled reply at the end; for them all content is held back."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import orjson

from .call import StreamState
from .dispatch import HookImpl, run_in_order
from .text import reply_text

if TYPE_CHECKING:
    from .call import Call
    from .selection import Selection


def _content_holder(choice: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return delta, "content"
    if "text" in choice:
        return choice, "text"
    return None


def _content(choice: Any) -> str:
    if not isinstance(choice, dict):
        return ""
    holder = _content_holder(choice)
    value = holder[0].get(holder[1]) if holder else None
    return value if isinstance(value, str) else ""


class StreamGuard:
    def __init__(self, call: Call, selection: Selection):
        self.call = call
        self.selection = selection
        self.state = StreamState()
        self.holdback = selection.stream_holdback
        self.pending = ""  # choice-0 content received and checked but not yet sent
        self.sent = ""  # choice-0 content the client has been sent
        self.held: list[dict[str, Any]] = []  # chunks from the finish onwards, sent last
        self.template: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None  # the upstream's count, when it sent one

    async def feed(self, payload: bytes) -> list[bytes]:
        """One upstream chunk in; the payloads that may be sent now out."""
        chunk = orjson.loads(payload)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if self.call.hide_usage and not chunk.get("choices"):
                return []
        state = self.state
        for choice in chunk.get("choices") or ():
            piece = _content(choice)
            if piece:
                state.add(choice.get("index", 0), piece)
        if self.selection.post_call_stream:
            await run_in_order(self.selection.post_call_stream, self.call,
                               {"call": self.call, "chunk": chunk, "stream": state})
        if self.template is None:
            self.template = chunk
        return self._release(chunk)

    def _release(self, chunk: dict[str, Any]) -> list[bytes]:
        if self.holdback == 0 and not self.held:
            self.sent += "".join(_content(c) for c in chunk.get("choices") or ()
                                 if c.get("index", 0) == 0)
            return [orjson.dumps(chunk)]
        choices = chunk.get("choices") or []
        first = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0),
                     None)
        holder = _content_holder(first) if first is not None else None
        piece = _content(first) if holder is not None else ""
        if piece:
            self.pending += piece
            holder[0][holder[1]] = ""
        if self.held or any(c.get("finish_reason") for c in choices) or not choices:
            self.held.append(chunk)
            return []
        out_now = len(self.pending) - self.holdback
        if holder is not None and out_now > 0:
            cut = int(out_now)
            holder[0][holder[1]], self.pending = self.pending[:cut], self.pending[cut:]
            self.sent += holder[0][holder[1]]
        if _says_nothing(chunk, first):
            return []
        return [orjson.dumps(chunk)]

    async def finish(self) -> list[bytes]:
        """After the upstream's last chunk: the final checks, then everything still held."""
        self.state.done = True
        if self.selection.post_call_stream:
            await run_in_order(self.selection.post_call_stream, self.call,
                               {"call": self.call, "chunk": {"choices": []},
                                "stream": self.state})
        if self.selection.post_call_assembled:
            assembled = self._assembled(self.sent + self.pending)
            await run_in_order(self.selection.post_call_assembled, self.call,
                               {"call": self.call, "response": assembled})
            self.pending = reply_text(assembled)[len(self.sent):]
        out = []
        if self.pending:
            out.append(orjson.dumps(self._content_chunk(self.pending)))
            self.sent += self.pending
            self.pending = ""
        out.extend(orjson.dumps(chunk) for chunk in self.held)
        return out

    def response_for_log(self) -> dict[str, Any]:
        return self._with_usage(self._assembled(self.sent))

    def response_received(self) -> dict[str, Any]:
        """Everything the upstream has sent so far, held-back text included: what a stream
        cut short is billed for."""
        return self._with_usage(self._assembled(self.sent + self.pending))

    def _with_usage(self, response: dict[str, Any]) -> dict[str, Any]:
        if self.usage is not None:
            response["usage"] = self.usage
        return response

    def _assembled(self, text: str) -> dict[str, Any]:
        template = self.template or {}
        chat = self.call.call_type == "chat_completion"
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}} if chat
                  else {"index": 0, "text": text})
        return {"id": template.get("id"), "model": template.get("model"),
                "object": "chat.completion" if chat else "text_completion",
                "choices": [{**choice, "finish_reason": "stop"}]}

    def _content_chunk(self, text: str) -> dict[str, Any]:
        template = self.template or {}
        chat = self.call.call_type == "chat_completion"
        choice = ({"index": 0, "delta": {"content": text}} if chat
                  else {"index": 0, "text": text, "logprobs": None})
        return {**{k: template[k] for k in ("id", "object", "created", "model")
                   if k in template},
                "choices": [{**choice, "finish_reason": None}]}


def _says_nothing(chunk: dict[str, Any], first: dict[str, Any] | None) -> bool:
    """True for a chunk whose only news was choice-0 content that is now held back."""
    if first is None or len(chunk.get("choices") or ()) != 1 or chunk.get("usage"):
        return False
    delta = first.get("delta")
    if isinstance(delta, dict):
        return not delta.get("content") and set(delta) <= {"content"}
    return not first.get("text")


def reply_as_stream(impl: HookImpl) -> HookImpl:
    """A ``post_call`` hook made of a guardrail's ``post_call_stream`` hook, for a guardrail in
    ``post_call`` mode that only checks streams: a whole reply is one final chunk, then the
    ``done`` call, so a non-streamed reply is never left unchecked. What the hook writes into the
    chunk's content is written back into the reply."""

    async def post_call(call: Call, response: dict[str, Any], extra_body: dict[str, Any]) -> None:
        chunk, holders = _reply_chunk(response)
        state = StreamState()
        for choice in chunk["choices"]:
            state.add(choice["index"], _content(choice))
        args = {"call": call, "chunk": chunk, "stream": state, "extra_body": extra_body}
        for done in (False, True):
            if done:
                state.done = True
                args["chunk"] = {"choices": []}
            result = impl.function(*[args[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                await result
        for choice, (holder, key) in zip(chunk["choices"], holders):
            holder[key] = _content(choice)

    return HookImpl(impl.name, post_call, ("call", "response", "extra_body"), impl.guardrail)


def _reply_chunk(response: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[dict, str]]]:
    """The reply's text choices as one stream chunk, and where each choice's text lives."""
    choices, holders = [], []
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            holder, key = message, "content"
            delta = {"role": message.get("role", "assistant"), "content": message["content"]}
            out = {"index": choice.get("index", 0), "delta": delta}
        elif isinstance(choice.get("text"), str):
            holder, key = choice, "text"
            out = {"index": choice.get("index", 0), "text": choice["text"]}
        else:
            continue
        choices.append({**out, "finish_reason": choice.get("finish_reason")})
        holders.append((holder, key))
    chunk = {k: response[k] for k in ("id", "created", "model") if k in response}
    return {**chunk, "choices": choices}, holders
