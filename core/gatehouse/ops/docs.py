"""API docs, as LiteLLM serves them: ``/openapi.json``, Swagger UI at ``DOCS_URL`` (default
``/``) and ReDoc at ``REDOC_URL`` (default ``/redoc``), all public so a browser opens them.
``DOCS_TITLE`` and ``DOCS_DESCRIPTION`` brand them, ``DOCS_FILTERED=True`` shows only the
OpenAI-compatible routes (the others still work), ``NO_DOCS`` / ``NO_REDOC`` / ``NO_OPENAPI``
turn each off. With the Swagger UI off or elsewhere, ``GET /`` answers as LiteLLM's does.

The document is generated from the application itself: every route aiohttp has, and the
pydantic models its handler reads its body and query string with and builds its answer through
(see :func:`body_model`, :func:`query_model`, :func:`response_model`), whose JSON schemas
pydantic writes.
The pages' scripts and styles are served by the gateway from the files the
``drf-spectacular-sidecar`` distribution ships, never from a CDN: gateways often run offline.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, RootModel
from pydantic.json_schema import models_json_schema

from ..config import ConfigError
from ..errors import json_response
from ..plugins import CORE_DISTRIBUTION
from ..ui import render

TRUE = ("true", "1", "yes", "on")
DEFAULT_TITLE = "Gatehouse API"
DEFAULT_DESCRIPTION = ("OpenAI-compatible LLM gateway. Send the master key or a virtual key as "
                       "`Authorization: Bearer <key>`.")
OPENAPI_PATH = "/openapi.json"
# The files the pages load, by the path the gateway serves them at: (directory in the
# sidecar's static tree, file name).
ASSETS = {
    "/swagger/swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
    "/swagger/swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "/swagger/favicon-32x32.png": ("swagger-ui-dist", "favicon-32x32.png"),
    "/swagger/redoc.standalone.js": ("redoc/bundles", "redoc.standalone.js"),
}
CONTENT_TYPES = {".css": "text/css", ".js": "application/javascript", ".png": "image/png"}
# The modules whose routes are the OpenAI-compatible surface (DOCS_FILTERED keeps these).
OPENAI_MODULES = frozenset({"gatehouse.proxy.routes"})
PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in TRUE


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    if not value.startswith("/"):
        raise ConfigError(f"{name}={value!r}: a path on the gateway, starting with '/'")
    return value


@dataclass(frozen=True, slots=True)
class DocsSettings:
    title: str = DEFAULT_TITLE
    # None: the gateway's own description (DEFAULT_DESCRIPTION).
    description: str | None = None
    filtered: bool = False
    # None: that page (or the document) is not served.
    docs_url: str | None = "/"
    redoc_url: str | None = "/redoc"
    openapi_url: str | None = OPENAPI_PATH

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DocsSettings:
        """The environment's settings; a docs path that is not a path stops the start."""
        no_openapi = _flag(env, "NO_OPENAPI")
        return cls(
            title=env.get("DOCS_TITLE") or DEFAULT_TITLE,
            description=env.get("DOCS_DESCRIPTION") or None,
            filtered=_flag(env, "DOCS_FILTERED"),
            # The pages read the document, so they go with it.
            docs_url=None if _flag(env, "NO_DOCS") or no_openapi
            else _url(env, "DOCS_URL", "/"),
            redoc_url=None if _flag(env, "NO_REDOC") or no_openapi
            else _url(env, "REDOC_URL", "/redoc"),
            openapi_url=None if no_openapi else OPENAPI_PATH)


class Docs:
    """The settings, and the document once built: on first request, when the router is frozen
    with every route in it, plugins' too."""

    def __init__(self, settings: DocsSettings):
        self.settings = settings
        self._document: dict[str, Any] | None = None

    def document(self, app: web.Application) -> dict[str, Any]:
        if self._document is None:
            self._document = build_document(app, self.settings)
        return self._document


DOCS = web.AppKey("docs", Docs)


def setup(app: web.Application, settings: DocsSettings) -> frozenset[str]:
    """Register the docs routes and ``GET /``; return the paths that need no key."""
    app[DOCS] = Docs(settings)
    public = {"/"}
    if settings.docs_url != "/":
        app.router.add_get("/", home)
    if settings.openapi_url:
        app.router.add_get(settings.openapi_url, openapi_json)
        public.add(settings.openapi_url)
    pages = {settings.docs_url: swagger_page, settings.redoc_url: redoc_page}
    for path, page in pages.items():
        if path:
            app.router.add_get(path, page)
            public.add(path)
    if settings.docs_url or settings.redoc_url:
        root = _sidecar_static()
        for path, (folder, name) in ASSETS.items():
            app.router.add_get(path, _asset(root / folder / name))
            public.add(path)
    return frozenset(public)


def _sidecar_static() -> Path:
    # Located, not imported: the distribution's __init__ imports Django, which it needs only
    # as a Django app.
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the API docs need the drf-spectacular-sidecar distribution (the "
                          "Swagger UI and ReDoc files); install it, or set NO_DOCS=True and "
                          "NO_REDOC=True")
    return Path(spec.submodule_search_locations[0]) / "static" / "drf_spectacular_sidecar"


def _asset(path: Path) -> Callable[[web.Request], Any]:
    async def asset(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={
            "Content-Type": CONTENT_TYPES[path.suffix], "Cache-Control": "public, max-age=86400"})
    # Not in the document: these are the pages' files, not the API.
    asset.__name__ = "docs_asset"
    return asset


async def home(request: web.Request) -> web.Response:
    return json_response("LiteLLM: RUNNING")


async def swagger_page(request: web.Request) -> web.Response:
    settings = request.app[DOCS].settings
    return render("swagger.html", title=settings.title, openapi_url=settings.openapi_url)


async def redoc_page(request: web.Request) -> web.Response:
    settings = request.app[DOCS].settings
    return render("redoc.html", title=settings.title, openapi_url=settings.openapi_url)


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[DOCS].document(request.app))


# --- the document ----------------------------------------------------------------------------

NOT_DOCUMENTED = frozenset({"docs_asset", "swagger_page", "redoc_page", "openapi_json"})
# The admin UI's pages are for a browser, not an API client.
UNDOCUMENTED_MODULES = frozenset({"gatehouse.ui.pages"})


class OpenAIError(BaseModel):
    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every failure, in the OpenAI error shape (admin bodies that fail validation are 422s
    with ``detail`` instead)."""

    error: OpenAIError


Kind = Callable[[type[BaseModel]], bool]


# What a model describes, by its ``openapi_in`` class attribute (admin/bodies.py's Query and
# Reply set it): the query string, the answer, or else (the default) the body. A root model
# (a list) is always an answer.
def _is_query(model: type[BaseModel]) -> bool:
    return getattr(model, "openapi_in", "body") == "query"


def _is_reply(model: type[BaseModel]) -> bool:
    return issubclass(model, RootModel) or getattr(model, "openapi_in", "body") == "response"


def _is_body(model: type[BaseModel]) -> bool:
    return not _is_query(model) and not _is_reply(model)


def body_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The pydantic model a handler reads its body with: its ``body_model`` attribute, else
    the first model its code names (``parse_body(request, NewTeam)`` names ``NewTeam``), else
    the first one a helper of its module that it calls names."""
    handler = inspect.unwrap(handler)
    declared = getattr(handler, "body_model", None)
    return declared if declared is not None else _named_model(handler, _is_body, helpers=True)


def query_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The model a handler reads its query string with (``parse_query``)."""
    return _named_model(inspect.unwrap(handler), _is_query, helpers=True)


def response_model(handler: Callable[..., Any]) -> type[BaseModel] | None:
    """The model a handler builds its answer through (``reply``)."""
    return _named_model(inspect.unwrap(handler), _is_reply, helpers=True)


def _named_model(function: Callable[..., Any], kind: Kind, *,
                 helpers: bool) -> type[BaseModel] | None:
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    scope = getattr(function, "__globals__", {})
    named = [scope.get(name) for name in code.co_names]
    model = next((v for v in named if isinstance(v, type) and issubclass(v, BaseModel)
                  and kind(v)), None)
    if model is not None or not helpers:
        return model
    called = (v for v in named if inspect.isfunction(v) and v.__module__ == function.__module__)
    return next(filter(None, (_named_model(v, kind, helpers=False) for v in called)), None)


def _given(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the null a model's optional field admits: a query
    string has no null, only a parameter left out."""
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **branches[0]}


def _parameters(path: str, query: type[BaseModel] | None) -> list[dict[str, Any]]:
    """The path's parameters, then the query model's: a field each, with its schema."""
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in PATH_PARAM.findall(path)]
    if query is not None:
        properties = query.model_json_schema()["properties"]
        for name, field in query.model_fields.items():
            parameter = {"name": name, "in": "query", "required": field.is_required(),
                         "schema": _given(properties[name])}
            if field.description:
                parameter["description"] = field.description
            parameters.append(parameter)
    return parameters


def _documented(app: web.Application, filtered: bool):
    for resource in app.router.resources():
        for route in resource:
            handler = inspect.unwrap(route.handler)
            if (route.method in ("HEAD", "OPTIONS") or handler.__name__ in NOT_DOCUMENTED
                    or handler.__module__ in UNDOCUMENTED_MODULES):
                continue
            if filtered and handler.__module__ not in OPENAI_MODULES:
                continue
            yield resource.canonical, route.method.lower(), handler


def _operation_id(name: str, method: str, path: str) -> str:
    return f"{name}_{re.sub(r'[^0-9a-zA-Z]+', '_', path).strip('_')}_{method}"


def build_document(app: web.Application, settings: DocsSettings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes."""
    routes = list(_documented(app, settings.filtered))
    models = {ErrorResponse}
    for _, method, handler in routes:
        body = body_model(handler) if method != "get" else None
        models.update(m for m in (body, response_model(handler)) if m)
    refs, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__qualname__)],
        ref_template="#/components/schemas/{model}")
    error = refs[(ErrorResponse, "validation")]
    paths: dict[str, dict[str, Any]] = {}
    for path, method, handler in routes:
        operation: dict[str, Any] = {
            "operationId": _operation_id(handler.__name__, method, path),
            "summary": handler.__name__.replace("_", " ").strip().capitalize(),
            "tags": [handler.__module__.rsplit(".", 2)[-2]],
            "responses": {"default": {"description": "An error",
                                      "content": {"application/json": {"schema": error}}}},
        }
        if handler.__doc__:
            operation["description"] = inspect.cleandoc(handler.__doc__)
        body = body_model(handler) if method != "get" else None
        reply = response_model(handler)
        operation["responses"]["200"] = {"description": "Success", "content": {
            "application/json": {"schema": refs[(reply, "validation")] if reply else {}}}}
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": refs[(body, "validation")]}}}
        parameters = _parameters(path, query_model(handler))
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(PATH_PARAM.sub(r"{\1}", path), {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": settings.title,
                 "description": settings.description or DEFAULT_DESCRIPTION,
                 # The gateway's own release: the API documented is this gateway's.
                 "version": metadata.version(CORE_DISTRIBUTION)},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
