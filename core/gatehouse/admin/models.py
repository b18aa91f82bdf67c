"""The models API: ``/model/new``, ``/model/update``, ``PATCH /model/{id}/update`` and
``/model/delete`` for models kept in the database (``store_model_in_db``), and ``/model/info``,
``/v1/model/info`` and ``/model_group/info`` for every served model -- to a non-admin key, only
the models it may see. Credentials are never shown; stored ones are kept encrypted.

A model whose ``model_info.team_id`` names a team is that team's: a proxy admin or the team's
admin makes it, it is stored under ``model_name_<team>_<uuid>`` with the name asked for as its
``team_public_model_name``, and the team gets that name in its ``models`` and as an alias of the
internal one. Only the team's keys (and admins) may call it; its team admins may change and
delete it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ..access.model_access import ModelAccess
from ..access.roles import PROXY_ADMIN, Rule, is_team_admin, role_of
from ..config.model_list import ModelParams
from ..config.problems import validation_problems
from ..errors import ClientError, DetailError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..proxy.router import Deployment, Router, may_call, shown_params
from ..proxy.stored_models import StoredModels
from ..store.models import COLUMNS
from ..store.schema import Row
from .bodies import Body, parse_body
from .context import ADMIN, Admin, gated
from .tables import actor, record_change
from .teams import TEAMS

# What LiteLLM answers when models are not kept in the database.
STORE_OFF = ("{'error': \"Set `'STORE_MODEL_IN_DB='True'` in your env to enable this "
             "feature.\"}")
IN_CONFIG = ("{'error': \"Can't edit model. Model in config. Store model in db via "
             "`/model/new`. to edit.\"}")
NOT_PERMITTED = ("{{'error': 'User does not have permission to make this model call. Your "
                 "role={role}. You can only make model calls if you are a PROXY_ADMIN or if "
                 "you are a team admin, by specifying a team_id in the model_info.'}}")
CHAT_PARAMS = ("frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
               "max_completion_tokens", "n", "presence_penalty", "seed", "stop", "stream",
               "stream_options", "temperature", "top_p", "tools", "tool_choice",
               "parallel_tool_calls", "response_format", "user")
SUPPORTS = ("supports_parallel_function_calling", "supports_vision",
            "supports_function_calling", "supports_web_search", "supports_reasoning")


@dataclass(frozen=True, slots=True)
class Models:
    router: Router
    access: ModelAccess
    # None unless store_model_in_db (or STORE_MODEL_IN_DB=True) is on.
    stored: StoredModels | None


MODELS = web.AppKey("models", Models)


class NewModel(Body):
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None


class UpdatedModel(Body):
    model_name: str | None = None
    litellm_params: dict[str, Any] | None = None
    model_info: dict[str, Any] | None = None


class DeletedModel(Body):
    id: str


def setup(app: web.Application, models: Models) -> None:
    app[MODELS] = models
    app.router.add_post("/model/new", new_model)
    app.router.add_post("/model/update", update_model)
    app.router.add_patch("/model/{model_id}/update", patch_model)
    app.router.add_post("/model/delete", delete_model)
    for path in ("/model/info", "/v1/model/info"):
        app.router.add_get(path, model_info)
    app.router.add_get("/model_group/info", model_group_info)


def _refused(status: int, message: str) -> ClientError:
    # LiteLLM's model routes answer through its auth converter: type auth_error, param "None".
    return ClientError(status, message, kind="auth_error", param="None")


def _stored(request: web.Request) -> StoredModels:
    stored = request.app[MODELS].stored
    if stored is None:
        raise _refused(500, STORE_OFF)
    return stored


def _params(params: dict[str, Any], where: str) -> ModelParams:
    try:
        return ModelParams.model_validate(params)
    except ValidationError as exc:
        problem = validation_problems(exc, model=ModelParams, prefix=(where,))[0]
        raise _refused(400, f"Invalid model: {problem}") from None


def _check_served(request: web.Request, model_name: str, params: ModelParams,
                  info: dict[str, Any]) -> None:
    """Refuse a model no installed provider could serve, before it is stored."""
    try:
        request.app[MODELS].router.deployment(model_name, params, info)
    except ValueError as exc:
        raise _refused(400, f"Invalid model: litellm_params.model: {exc}") from None


def _row_out(row: Row) -> dict[str, Any]:
    return {key: row[key] for key in COLUMNS}


# The model-changing routes check the caller themselves: admins, and team admins for their
# team's models.
model_route = gated(Rule.MEMBERS)


@model_route
async def new_model(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request)
    body = await parse_body(request, NewModel)
    info = dict(body.model_info or {})
    team = await _team_managed(request, admin, info.get("team_id"))
    params = _params(body.litellm_params, "litellm_params")
    model_name = body.model_name
    if team is not None:
        model_name = f"model_name_{team['team_id']}_{uuid.uuid4()}"
        info["team_public_model_name"] = body.model_name
    _check_served(request, model_name, params, info)
    model_id = str(info.get("id") or "")
    if model_id and (model_id in request.app[MODELS].router.routes.by_id
                     or await stored.rows.get(model_id) is not None):
        raise _refused(400, f"{{'error': 'Model with id={model_id} already exists'}}")
    row = await stored.add(model_name, body.litellm_params, info, actor(request))
    await record_change(request, "models", "created", row["model_id"], None,
                        _audited(model_name, params, info))
    if team is not None:
        await _publish(request, team, body.model_name, model_name)
    return json_response(_row_out(row))


async def _team_managed(request: web.Request, admin: Admin, team_id: Any) -> Row | None:
    """The team a model belongs to (None: no team's), once the caller may manage its models:
    a proxy admin any model, a team admin only its team's."""
    team = await admin.store.get_row("teams", str(team_id)) if team_id else None
    principal = request[PRINCIPAL]
    if role_of(principal) != PROXY_ADMIN and (team is None or not is_team_admin(principal, team)):
        raise _refused(403, NOT_PERMITTED.format(role=role_of(principal)))
    if team_id and team is None:
        raise _refused(400, f"{{'error': 'Team not found, passed team_id={team_id}'}}")
    return team


async def _publish(request: web.Request, team: Row, public: str, internal: str) -> None:
    """Give a team its new model: the public name in its models (an empty list, every model,
    keeps that meaning) and as an alias of the internal one."""
    models = team["models"] or ["all-proxy-models"]
    await TEAMS.update(request, team["team_id"], team["team_id"], {
        "models": [*dict.fromkeys([*models, public])],
        "model_aliases": {**(team.get("model_aliases") or {}), public: internal}})


async def _unpublish(request: web.Request, admin: Admin, row: Row) -> None:
    """Take a deleted team model's public name back from its team."""
    info = row["model_info"]
    team = await admin.store.get_row("teams", str(info["team_id"]))
    public = info.get("team_public_model_name")
    aliases = dict((team or {}).get("model_aliases") or {})
    if team is None or aliases.get(public) != row["model_name"]:
        return
    del aliases[public]
    await TEAMS.update(request, team["team_id"], team["team_id"], {
        "models": [m for m in team["models"] if m != public], "model_aliases": aliases})


@model_route
async def update_model(request: web.Request, admin: Admin) -> web.Response:
    """Merge ``litellm_params`` into a stored model (a null value keeps the old one)."""
    stored = _stored(request)
    body = await parse_body(request, UpdatedModel)
    if body.model_info is None:
        raise _refused(400, "Authentication Error, model_info not provided")
    model_id = str(body.model_info.get("id") or "")
    row = await stored.opened(model_id) if model_id else None
    await _team_managed(request, admin, row and row["model_info"].get("team_id"))
    if row is None:
        if model_id in request.app[MODELS].router.routes.by_id:
            raise _refused(400, IN_CONFIG)
        raise _refused(400, "Authentication Error, model not found")
    params = {**row["litellm_params"], **{k: v for k, v in (body.litellm_params or {}).items()
                                          if v is not None}}
    return await _save(request, stored, row, row["model_name"], params, row["model_info"])


async def _save(request: web.Request, stored: StoredModels, row: Row, model_name: str,
                params: dict[str, Any], info: dict[str, Any]) -> web.Response:
    checked = _params(params, "litellm_params")
    _check_served(request, model_name, checked, info)
    saved = await stored.update(row["model_id"], model_name, params, info,
                                actor(request))
    if saved is None:  # deleted meanwhile
        raise _refused(400, "Authentication Error, model not found")
    await record_change(request, "models", "updated", row["model_id"], _audited_row(row),
                        _audited(model_name, checked, info))
    return json_response(_row_out(saved))


@model_route
async def patch_model(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request)
    model_id = request.match_info["model_id"]
    body = await parse_body(request, UpdatedModel)
    row = await stored.opened(model_id)
    await _team_managed(request, admin, row and row["model_info"].get("team_id"))
    if row is None:
        if model_id in request.app[MODELS].router.routes.by_id:
            raise ClientError(400, "Cannot edit config-based model. Store model in DB via "
                                   "/model/new first.", kind="validation_error", param="None")
        raise ClientError(404, f"Model {model_id} not found on proxy.",
                          kind="not_found_error", param="None")
    params = {**row["litellm_params"], **(body.litellm_params or {})}
    # Which team a model is, and under what name, is settled when it is made.
    kept = {k: row["model_info"][k] for k in ("team_id", "team_public_model_name")
            if k in row["model_info"]}
    info = {**row["model_info"], **(body.model_info or {}), **kept}
    return await _save(request, stored, row, body.model_name or row["model_name"], params,
                       info)


@model_route
async def delete_model(request: web.Request, admin: Admin) -> web.Response:
    stored = _stored(request)
    body = await parse_body(request, DeletedModel)
    row = await stored.opened(body.id)
    await _team_managed(request, admin, row and row["model_info"].get("team_id"))
    if row is None or not await stored.delete(body.id):
        raise _refused(400, f"{{'error': 'Model with id={body.id} not found in db'}}")
    await record_change(request, "models", "deleted", body.id, _audited_row(row), {})
    if row["model_info"].get("team_id"):
        await _unpublish(request, admin, row)
    return json_response({"message": f"Model: {body.id} deleted successfully"})


def _audited(model_name: str, params: ModelParams, info: dict[str, Any]) -> dict[str, Any]:
    """A stored model as its audit rows hold it: credentials left out or masked."""
    return {"model_name": model_name, "litellm_params": shown_params(params),
            "model_info": info}


def _audited_row(row: Row) -> dict[str, Any]:
    return _audited(row["model_name"], _params(row["litellm_params"], "litellm_params"),
                    row["model_info"])


def _visible(request: web.Request) -> list[Deployment]:
    """The deployments the caller may see: every one it may call for an admin or a caller held
    to no list, else those of the models its key, team or JWT grants may use."""
    models = request.app[MODELS]
    principal: Principal = request[PRINCIPAL]
    deployments = models.router.routes.deployments
    if principal.is_admin or (principal.key is None and principal.team is None
                              and not principal.model_grants):
        return [d for d in deployments if may_call(principal, d)]
    names = set(models.access.visible(principal,
                                      models.router.routes.names_for(principal)))
    return [d for d in deployments if may_call(principal, d) and (
        d.model_name in names or d.model_info.get("team_public_model_name") in names)]


def _info(admin: Admin, deployment: Deployment) -> dict[str, Any]:
    prices = admin.prices.by_model.get(deployment.model_name, (0.0, 0.0))
    return {"model_name": deployment.model_name,
            "litellm_params": shown_params(deployment.params),
            "model_info": {"input_cost_per_token": prices[0],
                           "output_cost_per_token": prices[1], "mode": "chat",
                           **deployment.model_info, "db_model": deployment.db_model}}


async def model_info(request: web.Request) -> web.Response:
    admin = request.app[ADMIN]
    wanted = request.query.get("litellm_model_id")
    deployments = _visible(request)
    if wanted:
        deployments = [d for d in deployments if d.id == wanted]
        if not deployments:
            raise DetailError(400, f"Model id = {wanted} not found on litellm proxy")
    return json_response({"data": [_info(admin, d) for d in deployments]})


async def model_group_info(request: web.Request) -> web.Response:
    admin = request.app[ADMIN]
    groups: dict[str, list[Deployment]] = {}
    for deployment in _visible(request):
        groups.setdefault(deployment.model_name, []).append(deployment)
    wanted = request.query.get("model_group")
    if wanted:
        groups = {name: group for name, group in groups.items() if name == wanted}
    return json_response({"data": [group_info(admin, name, group)
                                   for name, group in groups.items()]})


def group_info(admin: Admin, name: str, group: list[Deployment], *,
               public: bool = False) -> dict[str, Any]:
    """A model group as ``/model_group/info`` and the public model hub show it."""
    info = group[0].model_info
    prices = admin.prices.by_model.get(name, (0.0, 0.0))

    def total(limit: str) -> int | None:
        values = [(d.params.model_extra or {}).get(limit) for d in group]
        return sum(v for v in values if isinstance(v, int)) or None

    return {"model_group": name,
            "providers": sorted({d.params.provider for d in group if d.params.model != "*"}),
            "max_input_tokens": info.get("max_input_tokens"),
            "max_output_tokens": info.get("max_output_tokens"),
            "input_cost_per_token": prices[0], "output_cost_per_token": prices[1],
            "mode": info.get("mode", "chat"), "tpm": total("tpm"), "rpm": total("rpm"),
            **{flag: bool(info.get(flag, False)) for flag in SUPPORTS},
            "supported_openai_params": list(CHAT_PARAMS),
            "is_public_model_group": public}
