"""``GET /-/plugins``: the installed plugins, what they implement and register."""

from __future__ import annotations

from aiohttp import web

from ..errors import json_response
from ..appkeys import GATEWAY


def setup(app: web.Application) -> None:
    app.router.add_get("/-/plugins", list_plugins)


async def list_plugins(request: web.Request) -> web.Response:
    return json_response(request.app[GATEWAY].plugins.describe())
