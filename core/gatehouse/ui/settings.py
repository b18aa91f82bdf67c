"""The Settings page's one piece of server-side data: the effective config, every secret
masked. The admin API has no route for it (LiteLLM's UI reads its config routes, which hand
secrets to the browser); rendering it here keeps the values on the gateway.

Masking errs towards hiding: a text is masked when its name might hold a credential, when it
sits under a setting whose values are credentials as often as not, or when it is the value of
an environment variable (``os.environ/`` references and decrypted secrets are resolved before
the config is read, so their names say nothing). A URL keeps its scheme, host and path; its
user, password and query are masked.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import yaml
from aiohttp import web

from ..config import Config
from ..guardrails.call import Principal
from ..guardrails.masking import mask, masked_url

# Every text under these is masked whatever it is called.
MASK_ALL = frozenset({"environment_variables", "headers", "extra_headers", "default_headers",
                      "default_query_params", "database_url", "redis_url"})
# A name with one of these in it may hold a credential (vertex_credentials, sentry_dsn,
# slack_webhook_url...); "key" only as a word of its own (api_key, apikey, api_keys), not
# inside banned_keywords_list.
SECRET_FRAGMENTS = ("secret", "token", "passw", "pwd", "credential", "auth", "dsn", "webhook",
                    "cookie", "private", "signature", "cert")
KEY_WORDS = frozenset({"key", "keys", "apikey", "apikeys"})
# Environment values this short are flags and ports, not credentials.
MIN_SECRET_LENGTH = 8


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return (any(fragment in lowered for fragment in SECRET_FRAGMENTS)
            or not KEY_WORDS.isdisjoint(lowered.replace("-", "_").split("_")))


class Masker:
    def __init__(self, environ: Mapping[str, str]):
        self._environment = {value for value in environ.values()
                             if len(value) >= MIN_SECRET_LENGTH}

    def __call__(self, value: Any, name: str = "", under_secret: bool = False) -> Any:
        if isinstance(value, dict):
            inside = under_secret or name in MASK_ALL
            return {key: self(inner, str(key), inside) for key, inner in value.items()}
        if isinstance(value, list):
            return [self(inner, name, under_secret) for inner in value]
        # Only text can hold a credential: a switch named like one (enable_jwt_auth) stays.
        if not isinstance(value, str):
            return value
        if (under_secret or name in MASK_ALL or _secret_name(name)
                or value in self._environment):
            return mask(value)
        return masked_url(value) if "://" in value else value


def config_view(config: Config, environ: Mapping[str, str] = os.environ
                ) -> list[tuple[str, str]]:
    """Each section of the effective config as YAML, in the file's order."""
    dumped = Masker(environ)(config.model_dump(mode="json"))
    return [(section, yaml.safe_dump(body, sort_keys=False, default_flow_style=False))
            for section, body in dumped.items() if body not in ({}, [], None)]


CONFIG = web.AppKey("ui_config", Config)


async def context(request: web.Request, principal: Principal) -> dict[str, Any]:
    return {"sections": config_view(request.app[CONFIG])}
