"""Where text travels in OpenAI bodies, to read it or rewrite it in place.

Guardrails use these instead of walking bodies themselves, so every guardrail covers the same
places. In a request:

* each chat message's ``content`` (a string, or its ``text``, ``input_text`` and ``refusal``
  content parts), ``refusal``, ``name``, tool-call ``arguments`` and legacy
  ``function_call.arguments``;
* ``tools[].function`` and legacy ``functions[]``: ``description``, and every ``description``
  in their ``parameters`` schema;
* ``response_format.json_schema``: ``description``, and every ``description`` in its ``schema``;
* ``prediction.content`` (a string or ``text`` parts);
* completions ``prompt`` and ``suffix``, embeddings ``input``, and ``user``.

In a reply: each choice's ``message`` (as above) or completion ``text``; in a stream chunk, the
same inside ``delta``. Non-text content parts (images, audio) are never touched.

Text is given as the model reads it:

* the text parts of one message's content are one text (:func:`request_groups` keeps their
  slots together; :func:`request_texts` joins them), so a match split across parts is seen;
* tool-call arguments, JSON the model decodes, are read with ``\\u`` escapes decoded
  (``competitor\\u002dx`` reads ``competitor-x``); what a guardrail writes back is stored as
  written.
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson

Slot = tuple[Any, Any]  # (container, key) such that container[key] is a str
Group = list[Slot]  # slots whose texts the model reads as one, in order

# Content part type -> the key holding its text.
_PART_TEXT = {"text": "text", "input_text": "text", "refusal": "refusal"}


class _DecodedArguments:
    """A tool call's ``arguments`` as canonical JSON: escapes a model decodes are decoded, so
    a check sees what the model sees; a write stores the new text as the arguments."""

    __slots__ = ("function", "text")

    def __init__(self, function: dict[str, Any], text: str):
        self.function = function
        self.text = text

    def __getitem__(self, key: str) -> str:
        return self.text

    def __setitem__(self, key: str, value: str) -> None:
        self.function[key] = self.text = value


def decoded_arguments(raw: str) -> str:
    """Tool-call arguments as the model reads them: ``raw`` with its ``\\u`` escapes decoded
    when it is whole JSON, else ``raw`` itself (a streamed piece, malformed JSON)."""
    if "\\u" not in raw:
        return raw
    try:
        return orjson.dumps(orjson.loads(raw)).decode()
    except orjson.JSONDecodeError:
        return raw


def _arguments_slot(holder: Any) -> Iterator[Slot]:
    function = holder if isinstance(holder, dict) else None
    raw = function.get("arguments") if function is not None else None
    if not isinstance(raw, str):
        return
    text = decoded_arguments(raw)
    yield (function, "arguments") if text is raw else (_DecodedArguments(function, text),
                                                       "arguments")


def _content_group(message: dict[str, Any]) -> Group:
    """A message's ``content``: the string, or its text parts, read as one text."""
    content = message.get("content")
    if isinstance(content, str):
        return [(message, "content")]
    if isinstance(content, list):
        return [(part, _PART_TEXT[part.get("type")]) for part in content
                if isinstance(part, dict) and part.get("type") in _PART_TEXT
                and isinstance(part.get(_PART_TEXT[part["type"]]), str)]
    return []


def message_groups(message: Any) -> Iterator[Group]:
    """One chat message's texts: its content, refusal, name and tool-call arguments."""
    if not isinstance(message, dict):
        return
    content = _content_group(message)
    if content:
        yield content
    for key in ("refusal", "name"):
        if isinstance(message.get(key), str):
            yield [(message, key)]
    tool_calls = message.get("tool_calls")
    # Replies are not validated as requests are: a malformed one is walked, not crashed on.
    for tool_call in tool_calls if isinstance(tool_calls, list) else ():
        if isinstance(tool_call, dict):
            yield from map(_one, _arguments_slot(tool_call.get("function")))
    yield from map(_one, _arguments_slot(message.get("function_call")))


def _one(slot: Slot) -> Group:
    return [slot]


def _message_slots(message: Any) -> Iterator[Slot]:
    return chain.from_iterable(message_groups(message))


def _str_or_list_slots(container: Any, key: str) -> Iterator[Slot]:
    value = container.get(key) if isinstance(container, dict) else None
    if isinstance(value, str):
        yield container, key
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield value, i


def _descriptions(schema: Any) -> Iterator[Slot]:
    """Every ``description`` string in a JSON schema, at any depth."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "description" and isinstance(value, str):
                yield schema, key
            else:
                yield from _descriptions(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _descriptions(item)


def _instruction_slots(body: dict[str, Any]) -> Iterator[Slot]:
    """Text that steers the model besides the messages: tool and schema descriptions."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict):
            yield from _descriptions(tool.get("function"))
    yield from _descriptions(body.get("functions"))
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        yield from _descriptions(response_format.get("json_schema"))


def request_groups(body: dict[str, Any]) -> Iterator[Group]:
    """The request's slots, those the model reads as one text together (one message's content
    parts); messages first, then ``prompt`` / ``input``, then the rest."""
    for message in body.get("messages") or ():
        yield from message_groups(message)
    yield from map(_one, chain(_str_or_list_slots(body, "prompt"),
                               _str_or_list_slots(body, "input")))
    # Shaped as a message's content: a string or text parts.
    yield from message_groups(body.get("prediction"))
    yield from map(_one, chain(_str_or_list_slots(body, "suffix"), _instruction_slots(body),
                               _str_or_list_slots(body, "user")))


def response_groups(response: dict[str, Any]) -> Iterator[Group]:
    """The slots of a reply or a stream chunk (``message`` or ``delta``, and ``text``)."""
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        yield from message_groups(choice.get("message"))
        yield from message_groups(choice.get("delta"))
        if isinstance(choice.get("text"), str):
            yield [(choice, "text")]


def request_slots(body: dict[str, Any]) -> Iterator[Slot]:
    return chain.from_iterable(request_groups(body))


def response_slots(response: dict[str, Any]) -> Iterator[Slot]:
    """Text in a reply or in a stream chunk (``message`` or ``delta``, and ``text``)."""
    return chain.from_iterable(response_groups(response))


def joined(group: Group) -> str:
    return "".join(container[key] for container, key in group)


def request_texts(body: dict[str, Any]) -> Iterator[str]:
    """Each text of the request as the model reads it (a message's content parts joined)."""
    return map(joined, request_groups(body))


def response_texts(response: dict[str, Any]) -> Iterator[str]:
    return map(joined, response_groups(response))


def rewrite(slots: Iterable[Slot], fn: Callable[[str], str]) -> int:
    """Apply ``fn`` to every slot's text; return how many changed."""
    changed = 0
    for container, key in list(slots):
        old = container[key]
        new = fn(old)
        if new != old:
            container[key] = new
            changed += 1
    return changed


def replace_spans(group: Group, spans: Sequence[tuple[int, int]], replacement: str) -> None:
    """Replace each ``(start, end)`` of the group's joined text (in order, not overlapping)
    with ``replacement``. It lands in the part where the span starts; the rest of a span that
    runs on into later parts is removed from them."""
    offset = 0
    for container, key in group:
        text = container[key]
        end_of_part = offset + len(text)
        out: list[str] = []
        pos = 0
        for start, end in spans:
            if end <= offset or start >= end_of_part:
                continue
            out += (text[pos:max(start - offset, 0)], replacement if start >= offset else "")
            pos = min(end - offset, len(text))
        if out:
            container[key] = "".join(out) + text[pos:]
        offset = end_of_part


def replace_group(group: Group, text: str) -> None:
    """Make ``text`` the group's whole text: it lands in the first part, the others are
    emptied (what a vendor that answers one corrected text per message gives back)."""
    replace_spans(group, [(0, len(joined(group)))], text)


def message_role_texts(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(role, text)`` for each chat message (its texts joined by lines), or
    ``("user", prompt)``."""
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            text = "\n".join(map(joined, message_groups(message)))
            yield str(message.get("role", "user")), text
    for container, key in _str_or_list_slots(body, "prompt"):
        yield "user", container[key]
    for container, key in _str_or_list_slots(body, "input"):
        yield "user", container[key]


def last_user_group(body: dict[str, Any]) -> Group:
    """The caller's latest turn: the content of the last ``user`` message, or a completion's
    prompt (the last, when it is a list); empty when there is none. What a vendor that judges
    "the user's prompt" is sent."""
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_group(message)
    return list(_str_or_list_slots(body, "prompt"))[-1:]


def reply_text(response: dict[str, Any]) -> str:
    """The assistant text of a reply's first choice."""
    for choice in response.get("choices") or ():
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return "".join(c[k] for c, k in _choice_content_slots(choice))
    return ""


def _choice_content_slots(choice: dict[str, Any]) -> Iterator[Slot]:
    for holder in (choice.get("message"), choice.get("delta")):
        if isinstance(holder, dict) and isinstance(holder.get("content"), str):
            yield holder, "content"
    if isinstance(choice.get("text"), str):
        yield choice, "text"
