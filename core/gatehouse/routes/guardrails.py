"""``GET /guardrails/list``: the configured guardrails and their ``guardrail_info``; never a
key or any other param."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response
from ..appkeys import GATEWAY


def setup(app: web.Application) -> None:
    app.router.add_get("/guardrails/list", list_guardrails)
    app.router.add_get("/v1/guardrails/list", list_guardrails)


async def list_guardrails(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    return json_response({"guardrails": [
        {"guardrail_name": name, "guardrail_info": gateway.guardrail_info[name]}
        for name in gateway.guardrails
    ]})
