"""Spend: ``GET /spend/tags``, ``/spend/logs``, ``/spend/keys``, ``/spend/users`` (proxy
admins, their viewers, keys with ``permissions.get_spend_routes``), ``POST /global/spend/reset``
(the master key alone) and ``POST /spend/calculate`` (any caller the gateway lets in; public
when listed in ``general_settings.public_routes``).

Logs and totals come from the database, which the gateway writes about once a second, so a
call shows up there shortly after it ends.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..access.limits import spend_counter
from ..access.prices import usage
from ..access.roles import Rule
from ..errors import ClientError, json_response
from ..proxy.schemas import check_body
from ..store.database import Row
from .bodies import Body, Query, RowsQuery, parse_body, parse_query
from .budgets import all_rows
from .context import ADMIN, Admin, gated
from .keys import key_ident, key_view
from .memberships import user_view
from .tables import iso

# LiteLLM's names for the call types, which its spend-log readers expect.
CALL_TYPES = {"chat_completion": "acompletion", "completion": "atext_completion",
              "embedding": "aembedding"}


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(default=0, ge=0)


class CompletionResponse(BaseModel):
    """A chat or text completion as an OpenAI-compatible API returned it; only the parts that
    price it are checked."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = None
    usage: Usage | None = None
    choices: list[dict[str, Any]] = Field(default_factory=list)


class SpendLogsQuery(RowsQuery):
    api_key: str | None = Field(default=None, description="Only this key's calls")
    request_id: str | None = Field(default=None, description="Only this call")


class SpendUsersQuery(Query):
    user_id: str | None = Field(default=None, description="Only this user")


class Calculate(Body):
    model: str | None = None
    messages: list[dict[str, Any]] | None = None
    completion_response: CompletionResponse | None = None


def setup(app: web.Application) -> None:
    app.router.add_get("/spend/tags", spend_tags)
    app.router.add_get("/spend/logs", spend_logs)
    app.router.add_post("/spend/calculate", calculate)
    app.router.add_get("/spend/keys", spend_keys)
    app.router.add_get("/spend/users", spend_users)
    app.router.add_post("/global/spend/reset", reset)


@gated(Rule.SPEND)
async def spend_tags(request: web.Request, admin: Admin) -> web.Response:
    """Every tag's calls and spend, all time (LiteLLM takes dates here and ignores them)."""
    return json_response([{"individual_request_tag": row["tag"], "log_count": row["log_count"],
                           "total_spend": row["spend"]}
                          for row in await admin.store.spend_by_tag()])


@gated(Rule.SPEND)
async def spend_keys(request: web.Request, admin: Admin) -> web.Response:
    return json_response([key_view(row) for row in await all_rows(admin, "keys")])


@gated(Rule.SPEND)
async def spend_users(request: web.Request, admin: Admin) -> web.Response:
    user_id = parse_query(request, SpendUsersQuery).user_id
    where = {"user_id": user_id} if user_id else None
    return json_response([user_view(row) for row in await all_rows(admin, "users", where)])


# The rows /global/spend/reset zeroes: (store kind, what the caches call one).
RESET = (("keys", "key"), ("teams", "team"))


@gated(Rule.MASTER_KEY)
async def reset(request: web.Request, admin: Admin) -> web.Response:
    """Zero every key's and team's spend. The cached rows and the shared spend counters go
    too, or budgets would go on counting from the old figures."""
    principals = admin.principals
    for kind, noun in RESET:
        for row in await admin.store.reset_spend(kind):
            await principals.cache.drop(spend_counter(noun, row["ident"], row))
            await principals.forget(noun, row["ident"])
    return json_response({"message": "Spend for all API Keys and Teams reset successfully",
                          "status": "success"})


@gated(Rule.SPEND)
async def spend_logs(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, SpendLogsQuery)
    rows = await admin.store.spend_logs(
        request_id=query.request_id, limit=query.limit,
        key_hash=key_ident(query.api_key)[0] if query.api_key else None)
    return json_response([log_view(row) for row in rows])


def log_view(row: Row) -> dict[str, Any]:
    return {
        "request_id": row["request_id"],
        "response_id": row["response_id"],
        "call_type": CALL_TYPES.get(row["call_type"], row["call_type"]),
        "model": row["model"],
        "api_key": row["key_hash"],
        "user": row["user_id"],
        "end_user": row["end_user"],
        "team_id": row["team_id"],
        "spend": row["spend"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "startTime": iso(row["start_time"]),
        "endTime": iso(row["end_time"]),
        "status": "success" if row["status"] < 400 else "failure",
        "metadata": row["metadata"],
        "request_tags": row["tags"],
        "requester_ip_address": row["request_ip"],
        "guardrails": row["guardrails"],
        **stored_texts(row),
    }


def stored_texts(row: Row) -> dict[str, Any]:
    """The call's text as LiteLLM's spend logs give it: ``{}`` where none was stored
    (``store_prompts_in_spend_logs`` off), else the request body, its messages, and the
    reply."""
    request = row.get("proxy_server_request")
    if request is None:
        return {"messages": {}, "response": {}, "proxy_server_request": {}}
    messages = request.get("messages") if isinstance(request, dict) else None
    return {"messages": messages if messages is not None else {},
            "response": row.get("response") or {}, "proxy_server_request": request}


async def calculate(request: web.Request) -> web.Response:
    """The cost of a call: from a completion's reported usage, or estimated from the text the
    same way the gateway estimates calls whose upstream reports no usage."""
    prices = request.app[ADMIN].prices
    body = await parse_body(request, Calculate)
    response = body.completion_response.model_dump() if body.completion_response else None
    model = body.model or (response or {}).get("model")
    if model is None or (body.messages is None and response is None):
        raise ClientError(400, "Pass 'model' and 'messages', or 'completion_response'",
                          param="model" if model is None else "messages")
    if body.messages is not None:
        check_body("chat_completion", {"model": model, "messages": body.messages})
    if not prices.knows(model):
        raise ClientError(400, f"No price known for model={model}", param="model")
    prompt_tokens, completion_tokens = usage({"messages": body.messages or []}, response)
    return json_response({"cost": prices.cost(model, prompt_tokens, completion_tokens)})
