"""Probes and descriptions: liveness and readiness, ``GET /-/plugins`` (the installed plugins,
what they implement and register), and ``GET /guardrails/list`` (the configured guardrails and
their ``guardrail_info``; never a key or any other param)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..errors import json_response
from ..guardrails.registry import GuardrailSet
from ..plugins import Plugins
from ..proxy.router import Router


@dataclass(frozen=True, slots=True)
class Status:
    router: Router
    guardrails: GuardrailSet
    plugins: Plugins


STATUS = web.AppKey("status", Status)


def setup(app: web.Application, status: Status) -> None:
    app[STATUS] = status
    app.router.add_get("/health/liveliness", liveliness)
    app.router.add_get("/health/liveness", liveliness)
    app.router.add_get("/health/readiness", readiness)
    app.router.add_get("/-/plugins", list_plugins)
    app.router.add_get("/guardrails/list", list_guardrails)
    app.router.add_get("/v1/guardrails/list", list_guardrails)


async def liveliness(request: web.Request) -> web.Response:
    return json_response("I'm alive!")


async def readiness(request: web.Request) -> web.Response:
    status = request.app[STATUS]
    return json_response({"status": "healthy" if status.router.started else "starting",
                          "models": len(status.router.model_names),
                          "guardrails": list(status.guardrails)})


async def list_plugins(request: web.Request) -> web.Response:
    described = request.app[STATUS].plugins.describe()
    if not request["principal"].is_admin:
        # Versions tell an attacker which known flaws to try; only operators need them.
        described = [{k: v for k, v in plugin.items() if k != "version"}
                     for plugin in described]
    return json_response(described)


async def list_guardrails(request: web.Request) -> web.Response:
    guardrails = request.app[STATUS].guardrails
    return json_response({"guardrails": [
        {"guardrail_name": name, "guardrail_info": guardrails.info[name]}
        for name in guardrails
    ]})
