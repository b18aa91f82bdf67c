"""A chat call naming several models (``"model": "gpt-4o,claude"``): one call per model, each
through the whole path (its own access check, guardrails, upstream, spend), answered as a JSON
array of their replies in the order named -- a failed one as its error body. With
``"fastest_response": true`` only the first to finish is answered, the others cancelled, and the
reply says so in ``x-litellm-fastest_response_batch_completion``.

Every model is checked against the caller's access first, so a call naming one it may not use
is refused whole (401) before any model is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..errors import ClientError

if TYPE_CHECKING:
    from ..access.model_access import ModelAccess
    from ..guardrails.call import Principal

FASTEST_HEADER = "x-litellm-fastest_response_batch_completion"
# The headers that describe one call's deployment or cost, not the array of several.
PER_CALL = ("x-litellm-model-", "x-litellm-response-", "x-litellm-attempted-",
            "x-litellm-overhead-", "llm_provider-", "content-")


def fan_out_models(body: dict[str, Any]) -> list[str] | None:
    """The models a body names, when it names more than one."""
    model = body.get("model")
    if not isinstance(model, str) or "," not in model:
        return None
    return [name for name in (part.strip() for part in model.split(",")) if name]


async def fan_out(access: ModelAccess, callers: list[Principal], body: dict[str, Any],
                  models: list[str],
                  serve: Callable[[dict[str, Any], int], Awaitable[web.StreamResponse]]
                  ) -> web.Response:
    """``serve(body, i)`` for each model's copy of ``body``, answered together; ``callers[i]``
    is who calls ``models[i]``."""
    if body.get("stream") is True:
        raise ClientError(400, "stream is not supported for a call naming several models",
                          param="stream")
    for caller, model in zip(callers, models):
        access.check(caller, model)
    fastest = body.pop("fastest_response", None) is True
    # Each call gets its own copy: guardrails may rewrite the one they are handed.
    raw = orjson.dumps(body)
    calls = [asyncio.ensure_future(serve({**orjson.loads(raw), "model": model}, i))
             for i, model in enumerate(models)]
    if fastest:
        return await _fastest(calls)
    replies = await asyncio.gather(*calls)
    headers = {name: value for name, value in replies[0].headers.items()
               if not name.lower().startswith(PER_CALL)}
    return web.Response(body=b"[" + b",".join(_body(reply) for reply in replies) + b"]",
                        content_type="application/json", headers=headers)


async def _fastest(calls: list[asyncio.Future[web.StreamResponse]]) -> web.Response:
    """The first call to finish with a reply; the first error only when every call failed."""
    pending = set(calls)
    first_error: web.StreamResponse | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                reply = finished.result()
                if reply.status == 200:
                    return _with_fastest(reply)
                first_error = first_error or reply
    finally:
        for call in pending:
            call.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    assert first_error is not None
    return _with_fastest(first_error)


def _with_fastest(reply: web.StreamResponse) -> web.Response:
    assert isinstance(reply, web.Response)
    reply.headers[FASTEST_HEADER] = "True"
    return reply


def _body(reply: web.StreamResponse) -> bytes:
    assert isinstance(reply, web.Response) and isinstance(reply.body, bytes)
    return reply.body
