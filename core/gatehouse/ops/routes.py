"""Probes and descriptions: liveness and readiness, ``GET /health`` (the deployments' health),
``GET /routes`` and ``GET /test`` as LiteLLM answers them, and ``GET /-/plugins`` (the
installed plugins, what they implement and register)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from aiohttp import web

from ..errors import DetailError, json_response
from ..guardrails.call import PRINCIPAL
from ..guardrails.registry import LiveGuardrails
from ..plugins import Plugins
from ..proxy.headers import LITELLM_VERSION
from ..proxy.router import Router
from ..store.cache import Cache, RedisCache
from .health import BackendProbe, Health

PROBE_PATHS = ("/health/liveliness", "/health/liveness", "/health/readiness")


@dataclass(frozen=True, slots=True)
class Status:
    router: Router
    guardrails: LiveGuardrails
    plugins: Plugins
    health: Health
    cache: Cache
    # None when the gateway keeps no database (no master key).
    database: BackendProbe | None = None
    # None without a redis_url.
    redis: BackendProbe | None = None

    @property
    def backends(self) -> tuple[BackendProbe, ...]:
        return tuple(probe for probe in (self.database, self.redis) if probe is not None)


STATUS = web.AppKey("status", Status)


def setup(app: web.Application, status: Status) -> None:
    app[STATUS] = status
    app.router.add_get("/health/liveliness", liveliness)
    app.router.add_get("/health/liveness", liveliness)
    app.router.add_get("/health/readiness", readiness)
    for path in PROBE_PATHS:
        app.router.add_route("OPTIONS", path, probe_options)
    app.router.add_get("/health", health)
    app.router.add_get("/routes", list_routes)
    app.router.add_get("/test", test_route)
    app.router.add_get("/-/plugins", list_plugins)


async def liveliness(request: web.Request) -> web.Response:
    """Never touches the database or Redis: a gateway that cannot reach them is not ready,
    but restarting it would not bring them back."""
    return json_response("I'm alive!")


async def probe_options(request: web.Request) -> web.Response:
    return web.Response(headers={"Allow": "GET, OPTIONS"})


async def readiness(request: web.Request) -> web.Response:
    """LiteLLM's readiness body. Quirk kept: with a database, ``status`` is the database's
    state (``connected`` / ``disconnected``), not the gateway's."""
    status = request.app[STATUS]
    if not status.router.started:
        raise DetailError(503, "Service Unhealthy (starting)")
    body = {
        "status": "healthy", "db": "Not connected",
        "cache": "redis" if isinstance(status.cache, RedisCache) else None,
        "litellm_version": LITELLM_VERSION,
        "success_callbacks": [impl.name for impl in status.guardrails.callbacks.get(
            "on_success", ())],
        "use_aiohttp_transport": True,
    }
    if status.database is not None:
        body["status"] = body["db"] = (
            "connected" if await status.database.reachable() else "disconnected")
        body["last_updated"] = datetime.datetime.now(datetime.UTC).isoformat()
    # An orchestrator sends no traffic to a gateway that cannot reach the database or Redis
    # it was set up with, and sends it again once they answer: each probe asks afresh.
    down = [probe.name for probe in status.backends if not await probe.reachable()]
    if down:
        return json_response({**body, "detail": f"Service Unhealthy ({', '.join(down)} "
                                                f"unreachable)"}, status=503)
    return json_response(body)


async def health(request: web.Request) -> web.Response:
    """Every deployment's health (``?model=`` a group or ``litellm_params.model``,
    ``?model_id=`` one deployment), for any valid key: not filtered by the key's models."""
    query = request.query
    return json_response(await request.app[STATUS].health.report(
        query.get("model") or None, query.get("model_id") or None))


async def list_routes(request: web.Request) -> web.Response:
    routes = []
    for resource in request.app.router.resources():
        methods = sorted({route.method for route in resource if route.method != "HEAD"})
        handlers = {getattr(route.handler, "__name__", "") for route in resource}
        name = next(iter(sorted(handlers)), "")
        routes.append({"path": resource.canonical, "methods": methods, "name": name,
                       "endpoint": name})
    return json_response({"routes": routes})


async def test_route(request: web.Request) -> web.Response:
    return json_response({"route": "/test"})


async def list_plugins(request: web.Request) -> web.Response:
    described = request.app[STATUS].plugins.describe()
    if not request[PRINCIPAL].is_admin:
        # Versions tell an attacker which known flaws to try; only operators need them.
        described = [{k: v for k, v in plugin.items() if k != "version"}
                     for plugin in described]
    return json_response(described)

