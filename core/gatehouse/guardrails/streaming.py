"""Output checks on a stream: every chunk passes the ``post_call_stream`` hooks before it is
sent, and every choice's content, refusal and tool-call arguments are held back by the largest
``stream_holdback`` among them, and by what a hook holds for the chunk (``stream.unsent.hold``),
so a match spanning chunks is stopped, or rewritten (``stream.unsent``), before any of it
reaches the client. Guardrails with only a ``post_call`` hook see the assembled reply at the
end; for them all text is held back."""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any, Iterator

import orjson

from .call import REFUSAL, StreamState, TextKey, Unsent, stream_slots
from .dispatch import HookImpl, run_in_order
from .text import Slot

if TYPE_CHECKING:
    from .call import Call
    from .selection import Selection


class StreamGuard:
    def __init__(self, call: Call, selection: Selection):
        self.call = call
        self.selection = selection
        self.holdback = selection.stream_holdback
        # Kept as pieces, joined only when read, so that no chunk costs more than its own text
        # however long the reply grows. The hooks see it, and may rewrite it, as
        # ``stream.unsent``.
        self.pending: dict[TextKey, list[str]] = {}  # received and checked, not yet sent
        self.unsent = Unsent(self.pending)
        self.state = StreamState(self.unsent)
        self.sent: dict[TextKey, list[str]] = {}  # what the client has been sent
        # What a tool call is besides its arguments (id, type, name), for the assembled reply.
        self.tools: dict[TextKey, dict[str, Any]] = {}
        self.held: list[dict[str, Any]] = []  # chunks from the first finish onwards, sent last
        self.template: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None  # the upstream's count, when it sent one

    async def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """One upstream chunk in, parsed (the guard may rewrite it); the payloads that may be
        sent now out."""
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            if self.call.hide_usage and not chunk.get("choices"):
                return []
        # The texts this chunk brought: only they may go out after it (see _release).
        brought: set[TextKey] = set()
        if self.selection.post_call_stream:
            # Only the per-chunk hooks read the stream's state.
            state = self.state
            state.next_chunk()
            for choice in chunk.get("choices") or ():
                for (index, tool), (holder, key) in stream_slots(choice):
                    if holder[key]:
                        state.add(index, holder[key], tool)
                        brought.add((index, tool))
            self.unsent.start(chunk)
            await run_in_order(self.selection.post_call_stream, self.call,
                               {"call": self.call, "chunk": chunk, "stream": state})
        if self.template is None:
            self.template = chunk
        return self._release(chunk, brought)

    def _release(self, chunk: dict[str, Any], brought: set[TextKey]) -> list[bytes]:
        choices = chunk.get("choices") or []
        slots = [slot for choice in choices for slot in stream_slots(choice)]
        self._remember_tools(choices)
        if self.holdback == 0 and not (self.held or self.pending or self.unsent.holding):
            for key, (holder, name) in slots:
                self.sent.setdefault(key, []).append(holder[name])
            return [orjson.dumps(chunk)]
        for key, (holder, name) in slots:
            if holder[name]:
                self.pending.setdefault(key, []).append(holder[name])
                holder[name] = ""
        if self.held or any(c.get("finish_reason") for c in choices) or not choices:
            self.held.append(chunk)
            return []
        if math.isinf(self.holdback):
            return [] if _says_nothing(chunk) else [orjson.dumps(chunk)]
        # A text goes out only after the hooks have seen new text of it: a hook holds what it
        # must when it is handed something new, and the hold lasts until then.
        for key, (holder, name) in slots:
            if key not in brought:
                continue
            keep = max(self.holdback, self.unsent.kept(key))
            pieces = self.pending.get(key, ())
            if not _longer_than(pieces, keep):
                continue
            # Joined only when some of it goes out, and the rest kept as one piece.
            pending = "".join(pieces)
            out_now = len(pending) - keep
            if out_now > 0:
                cut = int(out_now)
                holder[name] = pending[:cut]
                if cut < len(pending):
                    self.pending[key] = [pending[cut:]]
                else:
                    del self.pending[key]
                self.sent.setdefault(key, []).append(holder[name])
        if _says_nothing(chunk):
            return []
        return [orjson.dumps(chunk)]

    def _remember_tools(self, choices: list[Any]) -> None:
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            for call in (delta.get("tool_calls") or ()) if isinstance(delta, dict) else ():
                if isinstance(call, dict) and call.get("id") is not None:
                    function = call.get("function") or {}
                    self.tools[(choice.get("index", 0), call.get("index", 0))] = {
                        "id": call["id"], "type": call.get("type", "function"),
                        "function": {"name": function.get("name")}}

    async def finish(self) -> list[bytes]:
        """After the upstream's last chunk: the final checks, then everything still held."""
        self.state.done = True
        self.state.next_chunk()
        last: dict[str, Any] = {"choices": []}
        self.unsent.start(last)
        if self.selection.post_call_stream:
            await run_in_order(self.selection.post_call_stream, self.call,
                               {"call": self.call, "chunk": last, "stream": self.state})
        if self.selection.post_call_assembled:
            assembled = self._assembled(self._received())
            await run_in_order(self.selection.post_call_assembled, self.call,
                               {"call": self.call, "response": assembled})
            sent = _joined(self.sent)
            self.pending.clear()
            self.pending.update({key: [text[len(sent.get(key, "")):]]
                                 for key, text in _assembled_texts(assembled).items()})
        out = [orjson.dumps(chunk) for chunk in self._pending_chunks()]
        out.extend(orjson.dumps(chunk) for chunk in self.held)
        return out

    def response_for_log(self) -> dict[str, Any]:
        return self._with_usage(self._assembled(_joined(self.sent)))

    def response_received(self) -> dict[str, Any]:
        """Everything the upstream has sent so far, held-back text included: what a stream
        cut short is billed for."""
        return self._with_usage(self._assembled(self._received()))

    def _received(self) -> dict[TextKey, str]:
        return _joined({key: [*self.sent.get(key, ()), *self.pending.get(key, ())]
                        for key in self.sent.keys() | self.pending.keys()})

    def _with_usage(self, response: dict[str, Any]) -> dict[str, Any]:
        if self.usage is not None:
            response["usage"] = self.usage
        return response

    def _assembled(self, texts: dict[TextKey, str]) -> dict[str, Any]:
        template = self.template or {}
        chat = self.call.call_type == "chat_completion"
        choices = []
        for index in sorted({0, *(key[0] for key in texts)}):
            content = texts.get((index, None), "")
            if not chat:
                choices.append({"index": index, "text": content, "finish_reason": "stop"})
                continue
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if (index, REFUSAL) in texts:
                message["refusal"] = texts[(index, REFUSAL)]
            tools = sorted(key for key in texts.keys() | self.tools.keys()
                           if key[0] == index and isinstance(key[1], int))
            if tools:
                message["tool_calls"] = [self._tool_call(key, texts.get(key, "")) for key in tools]
            choices.append({"index": index, "message": message, "finish_reason": "stop"})
        return {"id": template.get("id"), "model": template.get("model"),
                "object": "chat.completion" if chat else "text_completion", "choices": choices}

    def _tool_call(self, key: TextKey, arguments: str) -> dict[str, Any]:
        head = self.tools.get(key, {})
        # The index is kept so that what a hook leaves is read back into the right tool call.
        return {**head, "index": key[1],
                "function": {**head.get("function", {}), "arguments": arguments}}

    def _pending_chunks(self) -> Iterator[dict[str, Any]]:
        """One chunk per choice carrying what is still held of its text."""
        template = self.template or {}
        head = {k: template[k] for k in ("id", "object", "created", "model") if k in template}
        chat = self.call.call_type == "chat_completion"
        pending = _joined(self.pending)
        for index in sorted({key[0] for key, text in pending.items() if text}):
            content = pending.get((index, None), "")
            if not chat:
                choice = {"index": index, "text": content, "logprobs": None}
            else:
                delta: dict[str, Any] = {"content": content} if content else {}
                if refusal := pending.get((index, REFUSAL)):
                    delta["refusal"] = refusal
                tools = sorted((key[1], text) for key, text in pending.items()
                               if key[0] == index and isinstance(key[1], int) and text)
                if tools:
                    delta["tool_calls"] = [{"index": tool, "function": {"arguments": text}}
                                           for tool, text in tools]
                choice = {"index": index, "delta": delta}
            yield {**head, "choices": [{**choice, "finish_reason": None}]}
        for key, text in pending.items():
            self.sent.setdefault(key, []).append(text)
        self.pending.clear()


def _longer_than(pieces: list[str], chars: float) -> bool:
    """Whether the pieces hold more than ``chars`` characters, counted from the end and only
    until past it: a text held back by a few characters costs each chunk about that many, and
    one held whole (``hold(key)``) nothing, however long it grows."""
    if math.isinf(chars):
        return False
    for piece in reversed(pieces):
        chars -= len(piece)
        if chars < 0:
            return True
    return False


def _joined(pieces: dict[TextKey, list[str]]) -> dict[TextKey, str]:
    return {key: "".join(parts) for key, parts in pieces.items()}


def _assembled_texts(response: dict[str, Any]) -> dict[TextKey, str]:
    """The texts of an assembled reply by key, as a ``post_call`` hook left them."""
    texts: dict[TextKey, str] = {}
    for choice in response.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message")
        holder = message if isinstance(message, dict) else choice
        text = holder.get("content" if holder is message else "text")
        texts[(index, None)] = text if isinstance(text, str) else ""
        if holder is message and isinstance(message.get("refusal"), str):
            texts[(index, REFUSAL)] = message["refusal"]
        for tool_call in (holder.get("tool_calls") or ()) if holder is message else ():
            arguments = (tool_call.get("function") or {}).get("arguments")
            texts[(index, tool_call.get("index", 0))] = (
                arguments if isinstance(arguments, str) else "")
    return texts


def _says_nothing(chunk: dict[str, Any]) -> bool:
    """True for a chunk whose only news was text that is now held back."""
    choices = chunk.get("choices")
    if not choices or chunk.get("usage"):
        return False
    return all(_choice_says_nothing(choice) for choice in choices)


def _choice_says_nothing(choice: Any) -> bool:
    if not isinstance(choice, dict) or choice.get("finish_reason") or choice.get("logprobs"):
        return False
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return not choice.get("text")
    if (delta.get("content") or delta.get("refusal")
            or not set(delta) <= {"content", "refusal", "tool_calls"}):
        return False
    return all(isinstance(call, dict) and set(call) <= {"index", "function"}
               and not (call.get("function") or {}).get("arguments")
               and set(call.get("function") or {}) <= {"arguments"}
               for call in delta.get("tool_calls") or ())


def reply_as_stream(impl: HookImpl) -> HookImpl:
    """A ``post_call`` hook made of a guardrail's ``post_call_stream`` hook, for a guardrail in
    ``post_call`` mode that only checks streams: a whole reply is one final chunk, then the
    ``done`` call, so a non-streamed reply is never left unchecked. What the hook writes into the
    chunk's content and tool-call arguments, or into ``stream.unsent`` (all of the reply is
    unsent until the hook is done), is written back into the reply."""

    async def post_call(call: Call, response: dict[str, Any], extra_body: dict[str, Any]) -> None:
        chunk, origins = _reply_chunk(response)
        state = StreamState()
        keys = [key for choice in chunk["choices"] for key, _ in stream_slots(choice)]
        for (index, tool), (holder, key) in (slot for choice in chunk["choices"]
                                             for slot in stream_slots(choice)):
            state.add(index, holder[key], tool)
        state.unsent.start(chunk)
        args = {"call": call, "chunk": chunk, "stream": state, "extra_body": extra_body}
        for done in (False, True):
            if done:
                # The chunk's text, as the hook left it, stays unsent for the done call.
                texts = dict(state.unsent)
                state.done = True
                state.next_chunk()
                args["chunk"] = {"choices": []}
                state.unsent.start(args["chunk"])
                for key, text in texts.items():
                    state.unsent[key] = text
            result = impl.function(*[args[name] for name in impl.argnames])
            if inspect.isawaitable(result):
                await result
        for key, (origin, origin_key) in zip(keys, origins):
            origin[origin_key] = state.unsent.get(key, "")

    return HookImpl(impl.name, post_call, ("call", "response", "extra_body"), impl.guardrail,
                    impl.mode)


def _reply_chunk(response: dict[str, Any]) -> tuple[dict[str, Any], list[Slot]]:
    """The reply's text choices as one stream chunk, and where in the reply each of the
    chunk's texts (in ``stream_slots`` order) lives."""
    choices, origins = [], []
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        out: dict[str, Any] = {"index": choice.get("index", 0)}
        message = choice.get("message")
        if isinstance(message, dict):
            delta: dict[str, Any] = {"role": message.get("role", "assistant")}
            for key in ("content", "refusal"):
                if isinstance(message.get(key), str):
                    delta[key] = message[key]
                    origins.append((message, key))
            tool_calls = []
            for position, tool_call in enumerate(message.get("tool_calls") or ()):
                function = tool_call.get("function") if isinstance(tool_call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    tool_calls.append({"index": position,
                                       "function": {"arguments": function["arguments"]}})
                    origins.append((function, "arguments"))
            if len(delta) == 1 and not tool_calls:
                continue
            out["delta"] = {**delta, "tool_calls": tool_calls} if tool_calls else delta
        elif isinstance(choice.get("text"), str):
            out["text"] = choice["text"]
            origins.append((choice, "text"))
        else:
            continue
        choices.append({**out, "finish_reason": choice.get("finish_reason")})
    chunk = {k: response[k] for k in ("id", "created", "model") if k in response}
    return {**chunk, "choices": choices}, origins
