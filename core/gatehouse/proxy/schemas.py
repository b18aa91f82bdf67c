"""Reading a request body, and the shape it must have, checked once, strictly (a string is not
a bool).

Only the fields the gateway relies on are checked; everything else passes through to the
upstream untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any, Union

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..config.problems import format_path
from ..errors import ClientError
from .router import unknown_model


MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 64 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    stream: bool = False
    user: str | None = None
    metadata: dict[str, Any] | None = None
    mock_response: str | None = None


class _Function(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    name: str | None = None
    arguments: str | None = None


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    function: _Function | None = None


class _Message(BaseModel):
    """Where guardrails read text must have the shape they read, or a malformed message could
    carry text past them."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: str
    content: Union[str, list[dict[str, Any]], None] = None
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None


class ChatBody(_Body):
    messages: list[_Message] = Field(min_length=1)


TextInput = Union[str, list[str], list[int], list[list[int]]]


class CompletionBody(_Body):
    prompt: TextInput


class EmbeddingBody(_Body):
    input: TextInput


BODIES: dict[str, type[_Body]] = {
    "chat_completion": ChatBody,
    "completion": CompletionBody,
    "embedding": EmbeddingBody,
}
_ADAPTERS = {call_type: TypeAdapter(model) for call_type, model in BODIES.items()}


MAX_DEPTH = 255


# Seconds the body of a request may take to arrive (general_settings.request_body_timeout).
BODY_TIMEOUT = web.AppKey("body_timeout", float)


async def read_raw(request: web.Request) -> bytes:
    """The request's body bytes, within ``request_body_timeout``."""
    timeout = request.app[BODY_TIMEOUT]
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise ClientError(408, f"Request body not received within {timeout:g} s "
                               f"(request_body_timeout)", kind="timeout") from None
    except web.RequestPayloadError:
        raise ClientError(400, "Request body could not be read: its compression "
                               "(Content-Encoding) or chunked encoding is corrupt") from None


async def read_json(request: web.Request) -> Any:
    raw = await read_raw(request)
    if not raw:
        raise ClientError(400, "Request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ClientError(400, f"Request body is not valid JSON: {exc}") from None
    check_depth(raw, body)
    return body


def check_depth(raw: bytes, body: Any) -> None:
    # orjson reads JSON nested up to 1,024 deep but writes only 255, so a deeper body would
    # fail when forwarded or stored. A body with fewer brackets cannot nest that deep: most
    # skip the check.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        try:
            orjson.dumps(body)
        except orjson.JSONEncodeError:
            raise ClientError(400, f"Request body is nested too deeply; the limit is "
                                   f"{MAX_DEPTH} levels") from None


def _nul_at(value: Any, where: tuple) -> tuple | None:
    """Where in ``value`` a string (key or value) holds a NUL, which Postgres cannot store."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (*where, key)
        if (found := _nul_at(item, (*where, key))) is not None:
            return found
    return None


def refuse_nul(value: dict[str, Any]) -> None:
    """Refuse a NUL in any text of ``value``: Postgres can neither store nor compare it."""
    where = _nul_at(value, ())
    if where is not None:
        raise ClientError(400, f"Invalid value for '{format_path(where)}': text may not contain "
                               f"NUL characters", param=str(where[0]))


def check_body(call_type: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise ClientError(400, "Request body must be a JSON object")
    try:
        _ADAPTERS[call_type].validate_python(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        where = format_path(loc)
        if err["type"] == "missing" and loc in MISSING:
            raise MISSING[loc]() from None
        message = {"missing": f"Missing required parameter: '{where}'"}.get(
            err["type"], f"Invalid value for '{where}': {err['msg']}")
        raise ClientError(400, message, param=str(loc[0]) if loc else None) from None
    # Stored with the call's spend row, where a database that refused them would leave the
    # call served and unbilled.
    for name in ("model", "user"):
        if "\0" in (body.get(name) or ""):
            raise _unstorable(name, "text may not contain NUL characters")
    if body.get("metadata"):
        _check_metadata(body["metadata"])


# Worded as LiteLLM answers them: a missing model as a model it cannot route, missing messages
# as the OpenAI upstream's refusal it passes on.
MISSING = {
    ("model",): lambda: unknown_model(None),
    ("messages",): lambda: ClientError(
        400, "litellm.BadRequestError: OpenAIException - Missing required parameter: "
             "'messages'.", param="messages"),
}


def _check_metadata(metadata: dict[str, Any]) -> None:
    # A loop, not recursion: a hostile nesting must not reach Python's recursion limit.
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise _unstorable("metadata", f"nested more than {MAX_METADATA_DEPTH} deep")
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(key, str) and "\0" in key or isinstance(item, str) and "\0" in item:
                raise _unstorable("metadata", "text may not contain NUL characters")
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
    if len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
        raise _unstorable("metadata", f"larger than {MAX_METADATA_BYTES // 1024} KiB")


def _unstorable(name: str, why: str) -> ClientError:
    return ClientError(400, f"Invalid value for '{name}': {why}", param=name)


def _is_union_tag(part: Any) -> bool:
    # pydantic names the union member that failed inside the location, e.g. 'list[str]'.
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part or "-" in part)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "dict"})
