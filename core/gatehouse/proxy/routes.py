"""The OpenAI-compatible surface, with and without the ``/v1`` prefix."""

from __future__ import annotations

import time

from aiohttp import web

from ..errors import json_response
from .pipeline import Pipeline

PIPELINE = web.AppKey("pipeline", Pipeline)

CALLS = {"/chat/completions": "chat_completion", "/completions": "completion",
         "/embeddings": "embedding"}


def setup(app: web.Application, pipeline: Pipeline) -> None:
    app[PIPELINE] = pipeline
    for prefix in ("", "/v1"):
        for path, call_type in CALLS.items():
            app.router.add_post(prefix + path, _call_handler(call_type))
        app.router.add_get(prefix + "/models", list_models)


def _call_handler(call_type):
    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[PIPELINE].handle(request, call_type, request["principal"])
    handler.__name__ = f"{call_type}_handler"
    return handler


async def list_models(request: web.Request) -> web.Response:
    """The models the caller may use: a key limited to some models sees only those."""
    created = int(time.time())
    allowed = request["principal"].models
    data = [{"id": name, "object": "model", "created": created, "owned_by": "gatehouse"}
            for name in request.app[PIPELINE].router.model_names
            if not allowed or name in allowed]
    return json_response({"object": "list", "data": data})
