"""Who is calling. With ``general_settings.master_key`` set, every route but the public ones
needs ``Authorization: Bearer <master key>``; without it the gateway is open."""

from __future__ import annotations

import hmac

from aiohttp import web

from .call import ANONYMOUS, Principal
from .errors import ClientError
from .gateway import Gateway

PUBLIC_PATHS = frozenset({"/health/liveliness", "/health/readiness", "/health/liveness"})


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key")


def authenticate(request: web.Request, gateway: Gateway) -> Principal:
    master = gateway.config.general_settings.master_key
    if master is None or request.path in PUBLIC_PATHS:
        return ANONYMOUS
    token = bearer_token(request)
    if token is None:
        raise ClientError(401, "Authentication Error, no API key passed in "
                               "(expected 'Authorization: Bearer <key>')", kind="auth_error")
    if not hmac.compare_digest(token.encode(), master.get_secret_value().encode()):
        raise ClientError(401, "Authentication Error, invalid API key", kind="auth_error")
    return ANONYMOUS
