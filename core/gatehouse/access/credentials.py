"""Credentials: reading the caller's key from a request, the routes that need none, and how
keys are made, shown, hashed and judged (a master key must not be guessable)."""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from ..config import ConfigError
from ..config.general_settings import GeneralSettings

DEFAULT_PUBLIC_PATHS = frozenset({"/health/liveliness", "/health/readiness", "/health/liveness",
                                  "/", "/routes", "/test"})
# LiteLLM configs name the default public routes by this placeholder.
LITELLM_DEFAULTS = "LiteLLMRoutes.public_routes"
WELL_KNOWN_KEYS = frozenset({"sk-1234", "sk-12345", "sk-123456", "sk-master", "sk-admin",
                             "password", "changeme", "admin", "secret", "master"})
MIN_MASTER_KEY_LENGTH = 16
# Every virtual key starts with this.
KEY_PREFIX = "sk-"


# Where clients put the key, in the order LiteLLM looks (first present wins): its own header,
# Authorization, then the headers of Azure, Anthropic, Google and Azure API Management clients.
KEY_HEADERS = ("x-litellm-api-key", "authorization", "api-key", "x-api-key", "x-goog-api-key",
               "ocp-apim-subscription-key")
# Authorization schemes whose credential is taken as the key.
SCHEMES = frozenset({"bearer", "basic"})


def presented_key(request: web.Request, header_name: str | None = None) -> str | None:
    """The key a request carries: None when it carries none, ``""`` when Authorization has a
    form that names no key (refused as malformed). ``header_name``
    (``general_settings.litellm_key_header_name``) replaces the usual headers."""
    headers = request.headers
    for name in (header_name,) if header_name else KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "authorization":
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() in SCHEMES else ""
        return _strip_bearer(value)
    return None


def _strip_bearer(value: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else value.strip()


def public_paths(configured: list[str]) -> frozenset[str]:
    return DEFAULT_PUBLIC_PATHS | {p for p in configured if p != LITELLM_DEFAULTS}


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> str:
    # 128 random bits: 22 URL-safe characters, as LiteLLM's keys have.
    return KEY_PREFIX + secrets.token_urlsafe(16)


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
