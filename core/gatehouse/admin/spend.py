"""Spend: ``GET /spend/tags``, ``/spend/logs``, ``/spend/keys``, ``/spend/users`` (proxy
admins, their viewers, keys with ``permissions.get_spend_routes``), ``POST /global/spend/reset``
(the master key alone) and ``POST /spend/calculate`` (any caller the gateway lets in; public
when listed in ``general_settings.public_routes``).

``GET /spend/logs/ui`` (a filtered page of the request log) and ``GET /spend/logs/ui/{id}``
(one call) serve the admin UI's Logs page as LiteLLM's serve its dashboard: any caller, who
sees every call when it may read all spend and the calls of its own keys otherwise.

Logs and totals come from the database, which the gateway writes about once a second, so a
call shows up there shortly after it ends.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from ..access.limits import spend_counter
from ..access.prices import usage
from ..access.roles import Rule, reads_everything
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..guardrails.monitoring import RunStatus
from ..proxy.schemas import check_body
from ..store.schema import Row
from ..store.spend_filters import SpendLogFilter
from .bodies import Body, Query, RowsQuery, parse_body, parse_query
from .budgets import all_rows
from .context import ADMIN, Admin, gated
from .key_views import key_ident, key_view
from .memberships import user_view
from .tables import iso

MAX_PAGE_SIZE = 100
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
    app.router.add_get("/spend/logs/ui", spend_logs_ui)
    app.router.add_get("/spend/logs/ui/{request_id}", spend_log_ui)
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


class SpendLogsUiQuery(Query):
    """LiteLLM's filters of its dashboard's request log, and two of ours: ``key_alias`` and
    ``guardrail_status`` (calls on which at least one guardrail ended with that status --
    ``would_have_intervened`` finds what an ``enforce: false`` guardrail or a shadow would have
    stopped)."""

    api_key: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    end_user: str | None = None
    model: str | None = None
    status_filter: Literal["success", "failure"] | None = None
    guardrail_status: RunStatus | None = None
    min_spend: float | None = Field(default=None, allow_inf_nan=False)
    max_spend: float | None = Field(default=None, allow_inf_nan=False)
    # "YYYY-MM-DD HH:MM:SS" as LiteLLM's dashboard sends them, or any ISO 8601 time; UTC
    # unless the text says otherwise. Calls started from start_date and before end_date; a
    # date alone as end_date counts its whole day.
    start_date: str | None = None
    end_date: str | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)


@gated(Rule.SELF)
async def spend_logs_ui(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, SpendLogsUiQuery)
    columns = {"team_id": query.team_id, "user_id": query.user_id,
               "end_user": query.end_user, "model": query.model,
               "key_hash": key_ident(query.api_key)[0] if query.api_key else None}
    chosen = _visible(request[PRINCIPAL], SpendLogFilter(
        columns=columns, request_id=query.request_id, key_alias=query.key_alias,
        failed=None if query.status_filter is None else query.status_filter == "failure",
        since=_moment(query.start_date, "start_date"),
        until=_moment(query.end_date, "end_date", end=True),
        min_spend=query.min_spend, max_spend=query.max_spend,
        guardrail_status=query.guardrail_status))
    size = query.page_size
    rows = await admin.store.spend_log_page(chosen, limit=size, offset=(query.page - 1) * size)
    total = await admin.store.count_spend_logs(chosen)
    return json_response({"data": [log_view(row) for row in rows], "total": total,
                          "page": query.page, "page_size": size,
                          "total_pages": math.ceil(total / size)})


@gated(Rule.SELF)
async def spend_log_ui(request: web.Request, admin: Admin) -> web.Response:
    """One call with everything kept of it: its request and reply text too, where the config
    stores them."""
    request_id = request.match_info["request_id"]
    rows = await admin.store.spend_log_page(
        _visible(request[PRINCIPAL], SpendLogFilter(request_id=request_id)), limit=1)
    if not rows:
        # The same answer for a call another user made: its id tells nothing.
        raise ClientError(404, f"No spend log with request_id={request_id}",
                          kind="not_found_error", param="request_id")
    row = rows[0]
    # null says "not stored" (store_prompts_in_spend_logs off); a stored call shows its
    # messages (the whole body for a call without them) and its reply, {} for a refused call.
    request = row.get("proxy_server_request")
    if request is None:
        texts = {"messages": None, "response": None}
    else:
        messages = request.get("messages") if isinstance(request, dict) else None
        texts = {"messages": request if messages is None else messages,
                 "response": row.get("response") or {}}
    return json_response({**log_view(row), **texts})


def _visible(principal: Principal, chosen: SpendLogFilter) -> SpendLogFilter:
    """``chosen`` narrowed to the calls the caller may read: all of them for those who read
    all spend, else those of the keys its user owns, else (a key with no user) its own."""
    if reads_everything(principal) or principal.permissions.get("get_spend_routes") is True:
        return chosen
    if principal.user_id is not None:
        return replace(chosen, key_owner=principal.user_id)
    asked = chosen.columns.get("key_hash")
    own = principal.key_hash if asked in (None, principal.key_hash) else []
    return replace(chosen, columns={**chosen.columns, "key_hash": own})


def _moment(raw: str | None, name: str, *, end: bool = False) -> float | None:
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ClientError(400, f"{name} must be a time, YYYY-MM-DD HH:MM:SS or ISO 8601; "
                               f"got {raw!r}", kind="bad_request", param=name) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        if end and len(raw) == len("YYYY-MM-DD"):
            when += timedelta(days=1)
        return when.timestamp()
    except OverflowError:  # past the last day a time can name: no bound
        return None


def log_view(row: Row) -> dict[str, Any]:
    metadata = row["metadata"] or {}
    return {
        "request_id": row["request_id"],
        "response_id": row["response_id"],
        "call_type": CALL_TYPES.get(row["call_type"], row["call_type"]),
        "model": row["model"],
        "api_key": row["key_hash"],
        "api_key_alias": metadata.get("user_api_key_alias"),
        "user": row["user_id"],
        "end_user": row["end_user"],
        "team_id": row["team_id"],
        "spend": row["spend"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "startTime": iso(row["start_time"]),
        "endTime": iso(row["end_time"]),
        "completionStartTime": iso(metadata.get("completion_start_time")),
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
