"""The Settings page's one piece of server-side data: the effective config, every secret
masked. The admin API has no route for it (LiteLLM's UI reads its config routes, which hand
secrets to the browser); rendering it here keeps the values on the gateway."""

from __future__ import annotations

from typing import Any

import yaml
from aiohttp import web

from ..config import Config
from ..guardrails.call import Principal
from ..guardrails.monitoring import looks_secret

MASKED = "********"
# Every value under these is masked whatever it is called: the environment's and headers'
# values are credentials as often as not, and a URL may carry a password.
MASK_ALL = frozenset({"environment_variables", "headers", "extra_headers", "database_url",
                      "redis_url", "forward_headers_values"})


def masked(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {key: masked(inner, str(key)) if name not in MASK_ALL else MASKED
                for key, inner in value.items()}
    if isinstance(value, list):
        return [masked(inner, name) for inner in value]
    # Only text can hold a credential: a switch named like one (enable_jwt_auth) stays.
    if isinstance(value, str) and (name in MASK_ALL or looks_secret(name)):
        return MASKED
    return value


def config_view(config: Config) -> list[tuple[str, str]]:
    """Each section of the effective config as YAML, in the file's order."""
    dumped = masked(config.model_dump(mode="json"))
    return [(section, yaml.safe_dump(body, sort_keys=False, default_flow_style=False))
            for section, body in dumped.items() if body not in ({}, [], None)]


CONFIG = web.AppKey("ui_config", Config)


async def context(request: web.Request, principal: Principal) -> dict[str, Any]:
    return {"sections": config_view(request.app[CONFIG])}
