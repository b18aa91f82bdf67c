"""The guardrail routes: ``GET /guardrails/list`` and ``/v2/guardrails/list`` (what is served,
credentials masked), ``POST /guardrails/apply_guardrail`` (one guardrail on a text, to try a
policy), and ``POST /guardrails``, ``PUT`` / ``DELETE /guardrails/{id}`` for guardrails kept in
the database, which every gateway sharing it serves within a poll interval."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from ..access.roles import PROXY_ADMIN, Rule, role_of
from ..config import ConfigError
from ..errors import ClientError, GuardrailFailed, json_response
from ..guardrails import monitoring
from ..guardrails.base import Guardrail
from ..guardrails.call import CLIENT_IP, PRINCIPAL, REQUEST_ID, Call
from ..guardrails.dispatch import HookImpl
from ..guardrails.judging import judge
from ..guardrails.masking import looks_secret, mask, masked_url
from ..guardrails.registry import GuardrailSet
from ..guardrails.streaming import reply_as_stream
from ..guardrails.stored import StoredGuardrails
from ..store.schema import Row
from .bodies import Body, parse_body
from .context import ADMIN, Admin, gated
from .tables import actor, iso, record_change

# Always listed, whether config wrote them or not: what a reader needs to know what runs.
SHOWN_ALWAYS = ("guardrail", "mode", "default_on")


class GuardrailFields(Body):
    guardrail_name: str
    litellm_params: dict[str, Any]
    guardrail_info: dict[str, Any] | None = None


class GuardrailBody(Body):
    guardrail: GuardrailFields


class ApplyBody(Body):
    guardrail_name: str
    text: str
    # Accepted as LiteLLM accepts them; like LiteLLM, not passed on.
    language: str | None = None
    entities: list[str] | None = None


def setup(app: web.Application) -> None:
    for prefix in ("", "/v1"):
        app.router.add_get(f"{prefix}/guardrails/list", list_guardrails)
    app.router.add_get("/v2/guardrails/list", list_guardrails_v2)
    for path in ("/guardrails/apply_guardrail", "/apply_guardrail"):
        app.router.add_post(path, apply_guardrail)
    app.router.add_post("/guardrails", create_guardrail)
    app.router.add_put("/guardrails/{guardrail_id}", update_guardrail)
    app.router.add_delete("/guardrails/{guardrail_id}", delete_guardrail)


def shown_value(name: str, value: Any) -> Any:
    """A param as lists show it: a credential masked, and a URL's user and password too (any
    key may read /guardrails/list)."""
    if isinstance(value, SecretStr):
        return mask(value.get_secret_value())
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if looks_secret(name):
        return mask(str(value))
    if isinstance(value, str) and "://" in value and "@" in value:
        return masked_url(value)
    return value


def shown_params(guardrail: Guardrail) -> dict[str, Any]:
    """A guardrail's params as written (and as taken from the environment), secrets
    masked."""
    params = guardrail.params
    written = params.model_fields_set | set(SHOWN_ALWAYS)
    return {name: shown_value(name, value)
            for name, value in params.model_dump(include=written).items() if value is not None}


def _served(request: web.Request) -> GuardrailSet:
    return request.app[ADMIN].guardrails.current


def _view(served: GuardrailSet, name: str) -> dict[str, Any]:
    row = served.stored.get(name)
    return {"guardrail_id": row["guardrail_id"] if row else name, "guardrail_name": name,
            "litellm_params": shown_params(served.by_name[name]),
            "guardrail_info": served.info[name],
            "created_at": iso(row["created_at"]) if row else None,
            "updated_at": iso(row["updated_at"]) if row else None,
            "guardrail_definition_location": "db" if row else "config"}


def _row_view(row: Row, params: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the CRUD routes answer and audit rows keep it: secrets masked."""
    return {"guardrail_id": row["guardrail_id"], "guardrail_name": row["guardrail_name"],
            "litellm_params": {k: shown_value(k, v) for k, v in params.items()},
            "guardrail_info": row["guardrail_info"] or None,
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])}


async def list_guardrails(request: web.Request) -> web.Response:
    served = _served(request)
    return json_response({"guardrails": [
        {"guardrail_name": name, "litellm_params": shown_params(served.by_name[name]),
         "guardrail_info": served.info[name]} for name in served.by_name]})


async def list_guardrails_v2(request: web.Request) -> web.Response:
    if request.app[ADMIN].stored_guardrails is None:
        raise ClientError(500, "Prisma client not initialized")
    served = _served(request)
    return json_response({"guardrails": [_view(served, name) for name in served.by_name]})


async def apply_guardrail(request: web.Request) -> web.Response:
    """One guardrail on ``text``, as a request's last message (or, for a guardrail that only
    checks replies, as a reply): ``{"response_text": <the text as it left>}``; a block is the
    guardrail's own status and body, a failure a 502 (504 past its timeout)."""
    body = await parse_body(request, ApplyBody)
    served = _served(request)
    name = body.guardrail_name
    if name not in served.by_name:
        raise ClientError(404, f"Guardrail '{name}' not found. Please ensure the guardrail is "
                               f"configured in your LiteLLM proxy.", kind="not_found_error")
    message = {"role": "user", "content": body.text}
    call = Call(request_id=request[REQUEST_ID], call_type="chat_completion",
                model="apply_guardrail", body={"model": "apply_guardrail",
                                               "messages": [message]},
                principal=request[PRINCIPAL], client_ip=request[CLIENT_IP],
                headers=request.headers)
    hook, args, holder = _hook_for(served.hooks[name], call, message)
    # The verdict the guardrail reaches, whatever it does with it on a call: one that only
    # monitors (enforce: false), is demoted past its latency budget or fails open is tried
    # here to see what it would do.
    verdict = await judge(hook, call, args, monitoring.begin(call, hook, time.time()))
    if verdict.blocked is not None:
        return json_response(verdict.blocked.body(), status=verdict.blocked.status)
    if verdict.kind == "failed":
        assert verdict.reason is not None
        raise GuardrailFailed(name, verdict.reason, timeout=verdict.timeout)
    return json_response({"response_text": holder["content"]})


def _hook_for(hooks: dict[str, HookImpl], call: Call, message: dict[str, Any]
              ) -> tuple[HookImpl, dict[str, Any], dict[str, Any]]:
    """The hook that sees the text, its arguments, and where the text is once it ran."""
    base = {"call": call, "extra_body": {}}
    for name in ("pre_call", "during_call"):
        if name in hooks:
            return hooks[name], base, message
    reply = {"role": "assistant", "content": message["content"]}
    if "post_call" in hooks or "post_call_stream" in hooks:
        hook = hooks.get("post_call") or reply_as_stream(hooks["post_call_stream"])
        response = {"object": "chat.completion",
                    "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}]}
        return hook, {**base, "response": response}, reply
    return hooks["logging_only"], {**base, "record": {"request": call.body}}, message


# --- stored guardrails ---------------------------------------------------------------------------

manage = gated(Rule.SELF)


def _stored(request: web.Request, admin: Admin) -> StoredGuardrails:
    if role_of(request[PRINCIPAL]) != PROXY_ADMIN:
        raise ClientError(403, "Admin access required to manage guardrails", kind="auth_error")
    if admin.stored_guardrails is None:
        raise ClientError(500, "Prisma client not initialized")
    return admin.stored_guardrails


def _checked(stored: StoredGuardrails, fields: GuardrailFields,
             replacing: str | None = None) -> None:
    try:
        stored.check(fields.guardrail_name, fields.litellm_params, replacing)
    except ConfigError as exc:
        raise ClientError(400, f"Invalid guardrail: {exc}", param="guardrail") from None


async def _opened(stored: StoredGuardrails, guardrail_id: str) -> Row:
    row = await stored.opened(guardrail_id)
    if row is None:
        raise ClientError(404, f"Guardrail with ID {guardrail_id} not found",
                          kind="not_found_error")
    return row


@manage
async def create_guardrail(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request, admin)
    fields = (await parse_body(request, GuardrailBody)).guardrail
    _checked(stored, fields)
    row = await stored.add(fields.guardrail_name, fields.litellm_params,
                           fields.guardrail_info or {}, actor(request))
    view = _row_view(row, fields.litellm_params)
    await record_change(request, "guardrails", "created", row["guardrail_id"], None, view)
    return json_response(view)


@manage
async def update_guardrail(request: web.Request, admin: Admin) -> web.Response:
    """Replace a stored guardrail whole, as LiteLLM's PUT does."""
    stored = _stored(request, admin)
    guardrail_id = request.match_info["guardrail_id"]
    fields = (await parse_body(request, GuardrailBody)).guardrail
    before = await _opened(stored, guardrail_id)
    fields.litellm_params = _kept_secrets(fields.litellm_params, before["litellm_params"],
                                          _shown_now(request, before["guardrail_name"]))
    _checked(stored, fields, replacing=before["guardrail_name"])
    row = await stored.replace(guardrail_id, fields.guardrail_name, fields.litellm_params,
                               fields.guardrail_info or {}, actor(request))
    if row is None:  # deleted meanwhile
        raise ClientError(404, f"Guardrail with ID {guardrail_id} not found",
                          kind="not_found_error")
    view = _row_view(row, fields.litellm_params)
    await record_change(request, "guardrails", "updated", guardrail_id,
                 _row_view(before, before["litellm_params"]), view)
    return json_response(view)


def _shown_now(request: web.Request, name: str) -> dict[str, Any]:
    served = _served(request).by_name.get(name)
    return shown_params(served) if served is not None else {}


def _kept_secrets(sent: dict[str, Any], stored: dict[str, Any],
                  shown: dict[str, Any]) -> dict[str, Any]:
    """``sent`` with each credential sent back as the lists show it (masked) replaced by the
    stored value: a client that edits what it read must not overwrite a secret with its
    mask."""
    kept = dict(sent)
    for name, value in sent.items():
        if name not in stored or not isinstance(value, str):
            continue
        masked = shown_value(name, stored[name])
        if masked != stored[name] and value in (masked, shown.get(name)):
            kept[name] = stored[name]
    return kept


@manage
async def delete_guardrail(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request, admin)
    guardrail_id = request.match_info["guardrail_id"]
    row = await _opened(stored, guardrail_id)
    if not await stored.delete(guardrail_id):
        raise ClientError(404, f"Guardrail with ID {guardrail_id} not found",
                          kind="not_found_error")
    view = _row_view(row, row["litellm_params"])
    await record_change(request, "guardrails", "deleted", guardrail_id, view, {})
    return json_response(view)
