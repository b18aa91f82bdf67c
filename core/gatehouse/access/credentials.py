"""Credentials: reading the caller's key from a request, the routes that need none, and how
keys are made, shown, hashed and judged (a master key must not be guessable)."""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from ..config import ConfigError, GeneralSettings

DEFAULT_PUBLIC_PATHS = frozenset({"/health/liveliness", "/health/readiness", "/health/liveness",
                                  "/", "/routes", "/test"})
# LiteLLM configs name the default public routes by this placeholder.
LITELLM_DEFAULTS = "LiteLLMRoutes.public_routes"
WELL_KNOWN_KEYS = frozenset({"sk-1234", "sk-12345", "sk-123456", "sk-master", "sk-admin",
                             "password", "changeme", "admin", "secret", "master"})
MIN_MASTER_KEY_LENGTH = 16


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or request.headers.get("api-key")


def public_paths(configured: list[str]) -> frozenset[str]:
    return DEFAULT_PUBLIC_PATHS | {p for p in configured if p != LITELLM_DEFAULTS}


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> str:
    return "sk-" + secrets.token_urlsafe(24)


def key_name(token: str) -> str:
    """How a key is shown after creation: enough to recognise it, not to use it."""
    return f"{token[:3]}...{token[-4:]}"


def weak_master_key(key: str) -> str | None:
    if key.lower() in WELL_KNOWN_KEYS:
        return "it is a well-known example key"
    if len(key) < MIN_MASTER_KEY_LENGTH:
        return f"it is shorter than {MIN_MASTER_KEY_LENGTH} characters"
    return None


def master_key(settings: GeneralSettings, source: str) -> str | None:
    """The configured master key; a weak one stops the start unless explicitly allowed."""
    if settings.master_key is None:
        return None
    key = settings.master_key.get_secret_value()
    problem = None if settings.allow_weak_master_key else weak_master_key(key)
    if problem:
        raise ConfigError.in_file(
            source, f"general_settings.master_key: refusing a weak master key ({problem}); "
                    f"use a long random one (e.g. 'sk-' + `openssl rand -hex 24`), or set "
                    f"general_settings.allow_weak_master_key: true for local experiments")
    return key
