"""Errors a client sees, always in the OpenAI error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ClientError(Exception):
    """A request the gateway refuses; ``status`` and the OpenAI-style body go to the client."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 param: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        # Advice for the client beside the body, e.g. Retry-After on a rate limit.
        self.headers = dict(headers or {})
        # The code is always the status as a string, so clients can match on one thing.
        self.body = error_body(message, kind=kind, param=param, code=str(status))


class GuardrailFailed(ClientError):
    """A guardrail failed closed: its vendor was down, too slow, or the hook crashed."""

    def __init__(self, guardrail: str, reason: str, *, timeout: bool):
        super().__init__(
            504 if timeout else 502,
            f"Guardrail {guardrail!r} could not check this request: {reason}",
            kind="guardrail_error",
        )
        self.guardrail = guardrail


class DetailError(ClientError):
    """An error LiteLLM answers raw, as ``{"detail": <string or object>}``, rather than in the
    OpenAI shape; clients of those routes read ``detail``."""

    def __init__(self, status: int, detail: Any):
        super().__init__(status, str(detail))
        self.body = {"detail": detail}


def error_body(message: str, *, kind: str, param: str | None = None, code: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": code}
    if details is not None:
        error["details"] = details
    return {"error": error}


def json_response(body: Any, status: int = 200, headers: Any = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def error_message(body: dict[str, Any]) -> str:
    """The message of an OpenAI-shaped error body, or the body itself when it has none."""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message"))
    return str(body)


def error_type(body: dict[str, Any]) -> str:
    """The ``type`` of an OpenAI-shaped error body ("Error" when it names none)."""
    error = body.get("error")
    if isinstance(error, dict) and error.get("type"):
        return str(error["type"])
    return "Error"
