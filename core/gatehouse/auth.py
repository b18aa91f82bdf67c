"""Reading the caller's credential and the routes that need none."""

from __future__ import annotations

from aiohttp import web

DEFAULT_PUBLIC_PATHS = frozenset({"/health/liveliness", "/health/readiness", "/health/liveness"})
# LiteLLM configs name the default public routes by this placeholder.
LITELLM_DEFAULTS = "LiteLLMRoutes.public_routes"


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key")


def public_paths(configured: list[str]) -> frozenset[str]:
    return DEFAULT_PUBLIC_PATHS | {p for p in configured if p != LITELLM_DEFAULTS}
