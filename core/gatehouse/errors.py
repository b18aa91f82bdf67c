"""Errors a client sees, always in the OpenAI error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ClientError(Exception):
    """A request the gateway refuses; ``status`` and the OpenAI-style body go to the client."""

    def __init__(self, status: int, message: Any, *, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | int | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message if isinstance(message, str) else str(message))
        self.status = status
        # Advice for the client beside the body, e.g. Retry-After on a rate limit.
        self.headers = dict(headers or {})
        self.body = error_body(message, kind=kind, param=param,
                               code=str(status) if code is None else code)


class GuardrailFailed(ClientError):
    """A guardrail failed closed: its vendor was down, too slow, or the hook crashed."""

    def __init__(self, guardrail: str, reason: str, *, timeout: bool):
        super().__init__(
            504 if timeout else 502,
            f"Guardrail {guardrail!r} could not check this request: {reason}",
            kind="guardrail_error",
        )
        self.guardrail = guardrail


def error_body(message: Any, *, kind: str, param: str | None = None,
               code: str | int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def json_response(body: Any, status: int = 200, headers: Any = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")
