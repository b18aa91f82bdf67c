"""Where text travels in OpenAI bodies, to read it or rewrite it in place.

Guardrails use these instead of walking bodies themselves, so every guardrail covers the same
places: chat message content (strings and ``text`` content parts), tool-call arguments, the
legacy ``prompt``, embeddings ``input``; in replies, message content, tool-call arguments and
completion ``text``; in stream chunks, the same inside ``delta``. Non-text content parts (images,
audio) are never touched.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

Slot = tuple[Any, Any]  # (container, key) such that container[key] is a str


def _message_slots(message: Any) -> Iterator[Slot]:
    if not isinstance(message, dict):
        return
    content = message.get("content")
    if isinstance(content, str):
        yield message, "content"
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(
                part.get("text"), str
            ):
                yield part, "text"
    tool_calls = message.get("tool_calls")
    # Replies are not validated as requests are: a malformed one is walked, not crashed on.
    for tool_call in tool_calls if isinstance(tool_calls, list) else ():
        function = tool_call.get("function") if isinstance(tool_call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            yield function, "arguments"


def _str_or_list_slots(container: dict[str, Any], key: str) -> Iterator[Slot]:
    value = container.get(key)
    if isinstance(value, str):
        yield container, key
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                yield value, i


def request_slots(body: dict[str, Any]) -> Iterator[Slot]:
    for message in body.get("messages") or ():
        yield from _message_slots(message)
    yield from _str_or_list_slots(body, "prompt")
    yield from _str_or_list_slots(body, "input")


def response_slots(response: dict[str, Any]) -> Iterator[Slot]:
    """Text in a reply or in a stream chunk (``message`` or ``delta``, and ``text``)."""
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        yield from _message_slots(choice.get("message"))
        yield from _message_slots(choice.get("delta"))
        if isinstance(choice.get("text"), str):
            yield choice, "text"


def request_texts(body: dict[str, Any]) -> Iterator[str]:
    return (container[key] for container, key in request_slots(body))


def response_texts(response: dict[str, Any]) -> Iterator[str]:
    return (container[key] for container, key in response_slots(response))


def rewrite(slots: Iterator[Slot], fn: Callable[[str], str]) -> int:
    """Apply ``fn`` to every slot's text; return how many changed."""
    changed = 0
    for container, key in list(slots):
        old = container[key]
        new = fn(old)
        if new != old:
            container[key] = new
            changed += 1
    return changed


def message_role_texts(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(role, text)`` for each chat message (content parts joined), or ``("user", prompt)``."""
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            text = "\n".join(c[k] for c, k in _message_slots(message))
            yield str(message.get("role", "user")), text
    for container, key in _str_or_list_slots(body, "prompt"):
        yield "user", container[key]
    for container, key in _str_or_list_slots(body, "input"):
        yield "user", container[key]


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
