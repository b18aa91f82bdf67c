"""Which routes a key may call: its ``allowed_routes`` (set directly, or by ``key_type``).

An entry is an exact path, a prefix (``/key`` covers ``/key/info``), a path ending in ``*``,
or the name of a route group as LiteLLM names them. An empty list allows every route; the
list only narrows what the key's role allows, never widens it.
"""

from __future__ import annotations

from ..errors import ClientError
from ..store.schema import Row

_LLM = ("/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions",
        "/v1/embeddings", "/embeddings", "/v1/models", "/models", "/v1/responses",
        "/responses", "/openai/deployments/*", "/engines/*", "/v1/models/*", "/models/*")
_INFO = ("/key/info", "/key/health", "/key/list", "/team/info", "/team/list", "/user/info",
         "/user/list", "/model/info", "/v1/model/info", "/model_group/info", "/health",
         "/spend/logs", "/spend/tags", "/global/spend/*", "/organization/info",
         "/organization/list", "/customer/info", "/end_user/info", "/budget/info")
_MANAGEMENT = ("/key/*", "/team/*", "/user/*", "/model/new", "/model/update", "/model/delete",
               "/customer/*", "/end_user/*", "/budget/*", "/organization/*")
ROUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "llm_api_routes": _LLM,
    "openai_routes": _LLM,
    "info_routes": _INFO,
    "management_routes": _MANAGEMENT,
}
# key_type -> the allowed_routes it stands for ("default": no narrowing).
KEY_TYPES: dict[str, list[str]] = {
    "default": [],
    "llm_api": ["llm_api_routes"],
    "management": ["management_routes"],
    "read_only": ["info_routes"],
}


# The paths whose calls go through the pipeline's CallGate, which checks a key's expiry, routes
# and team in LiteLLM's order; every other route has them checked when the key is looked up.
_CALLS = ("/chat/completions", "/completions", "/embeddings")
MODEL_CALLS = frozenset(prefix + path for prefix in ("", "/v1") for path in _CALLS)
DEPLOYMENTS = "/openai/deployments/"


def is_model_call(route: str) -> bool:
    if route in MODEL_CALLS:
        return True
    # /openai/deployments/{model}/chat/completions, the model one path segment
    rest = route.removeprefix(DEPLOYMENTS)
    return rest != route and "/" + rest.partition("/")[2] in _CALLS


def matches(route: str, entry: str) -> bool:
    if entry in ROUTE_GROUPS:
        return any(matches(route, member) for member in ROUTE_GROUPS[entry])
    if entry.endswith("*"):
        return route.startswith(entry[:-1])
    return route == entry or route.startswith(entry.rstrip("/") + "/")


def check_route(key: Row, route: str) -> None:
    allowed = key.get("allowed_routes") or []
    if allowed and route and not any(matches(route, entry) for entry in allowed):
        raise ClientError(403, f"Virtual key is not allowed to call this route. Only allowed "
                               f"to call routes: {allowed}. Tried to call route: {route}",
                          kind="auth_error", param="None")
