"""Blocking end users: ``/customer/block`` and ``/customer/unblock`` (also at LiteLLM's
``/user/unblock``). A call whose ``user`` (or whose key's user) is blocked is refused before any
guardrail or upstream sees it.

Gateways re-read the blocked list once a second, so a change takes up to a second to apply.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from ..errors import json_response
from .bodies import Body, parse_body
from .context import Admin, admin_route


class UserIds(Body):
    user_ids: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


def setup(app: web.Application) -> None:
    app.router.add_post("/customer/block", block)
    app.router.add_post("/customer/unblock", unblock)
    app.router.add_post("/user/unblock", unblock)


@admin_route
async def block(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UserIds)
    await admin.store.block_users(body.user_ids)
    return json_response({"blocked_users": body.user_ids})


@admin_route
async def unblock(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UserIds)
    await admin.store.unblock_users(body.user_ids)
    # The config's blocked_user_list is not the API's to lift; say so rather than pretend.
    from_config = sorted(set(body.user_ids) & admin.principals.config_blocked)
    return json_response({"unblocked_users": body.user_ids,
                          "still_blocked_by_config": from_config})
