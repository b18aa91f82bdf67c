"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response
from ..appkeys import GATEWAY


def setup(app: web.Application) -> None:
    app.router.add_get("/health/liveliness", liveliness)
    app.router.add_get("/health/liveness", liveliness)
    app.router.add_get("/health/readiness", readiness)


async def liveliness(request: web.Request) -> web.Response:
    return json_response("I'm alive!")


async def readiness(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    return json_response({"status": "healthy" if gateway.http is not None else "starting",
                          "models": len(gateway.model_names),
                          "guardrails": list(gateway.guardrails)})
