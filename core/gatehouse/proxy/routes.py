"""The OpenAI-compatible surface, with and without the ``/v1`` prefix, and under
``/openai/deployments/{model}/...`` for Azure-style clients, which name the model in the path."""

from __future__ import annotations

from aiohttp import web

from ..access.roles import is_team_member
from ..config.model_list import provider_of
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from .fallbacks import KINDS
from .pipeline import Pipeline
from .schemas import BODIES

PIPELINE = web.AppKey("pipeline", Pipeline)

CALLS = {"/chat/completions": "chat_completion", "/completions": "completion",
         "/embeddings": "embedding"}
# What LiteLLM shows as every model's creation time.
CREATED = 1677610602
TRUE = ("true", "1", "yes")


def setup(app: web.Application, pipeline: Pipeline) -> None:
    app[PIPELINE] = pipeline
    for path, call_type in CALLS.items():
        for prefix in ("", "/v1"):
            app.router.add_post(prefix + path, _call_handler(call_type))
        app.router.add_post("/openai/deployments/{model}" + path,
                            _call_handler(call_type, model_in_path=True))
    for prefix in ("", "/v1"):
        app.router.add_get(prefix + "/models", list_models)
    app.router.add_get("/v1/models/{model_id:.+}", show_model)


def _call_handler(call_type, *, model_in_path=False):
    async def handler(request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"] if model_in_path else None
        return await request.app[PIPELINE].handle(request, call_type, request[PRINCIPAL],
                                                  model=model)
    handler.__name__ = f"{call_type}_handler"
    # What the API docs show as its body (ops/docs.py).
    handler.body_model = BODIES[call_type]
    return handler


def visible_models(request: web.Request, principal: Principal) -> list[str]:
    pipeline = request.app[PIPELINE]
    router = pipeline.router
    served = [*router.routes.names_for(principal), *router.routes.shown_aliases]
    return pipeline.gate.models.visible(principal, served)


def _entry(request: web.Request, name: str) -> dict:
    group = request.app[PIPELINE].router.routes.groups.get(name)
    owner = group[0].params.provider if group else provider_of(name)
    return {"id": name, "object": "model", "created": CREATED, "owned_by": owner}


async def list_models(request: web.Request) -> web.Response:
    """The models the caller may use: its key's, else its team's, else all (LiteLLM's rules),
    each wildcard followed by the catalogue's models it matches; ``team_id`` lists that
    team's, for its members. Access groups are named with
    ``include_model_access_groups``, alone with ``only_model_access_groups`` too."""
    principal = await _listing_principal(request)
    names = visible_models(request, principal)
    known = request.app[PIPELINE].router.routes.known
    names = list(dict.fromkeys([*names, *(model for name in names
                                           for model in known.get(name, ()))]))
    query = request.query
    groups = request.app[PIPELINE].gate.models.groups_of(names) \
        if query.get("include_model_access_groups", "").lower() in TRUE else []
    if query.get("only_model_access_groups", "").lower() in TRUE:
        names = []
    data = [_entry(request, name) for name in [*names, *groups]]
    if query.get("include_metadata", "").lower() in TRUE:
        fallbacks = request.app[PIPELINE].fallbacks
        kind = query.get("fallback_type", "general")
        if kind not in KINDS:
            raise ClientError(400, f"Invalid fallback_type={kind}. Must be one of: "
                                   f"{', '.join(KINDS)}", param="fallback_type")
        for entry in data:
            entry["metadata"] = {"fallbacks": list(fallbacks.of(entry["id"], kind))}
    return json_response({"data": data, "object": "list"})


async def _listing_principal(request: web.Request) -> Principal:
    principal = request[PRINCIPAL]
    team_id = request.query.get("team_id")
    if not team_id:
        return principal
    team = await request.app[PIPELINE].gate.principals.record("team", team_id)
    # Whether a team exists is no business of someone outside it.
    if not principal.is_admin and (team is None or not is_team_member(principal, team)):
        raise ClientError(403, f"{{'error': 'User={principal.user_id} not authorized to access "
                               f"this team={team_id}'}}", kind="auth_error", param="None")
    if team is None:
        raise ClientError(404, f"Team not found, passed team_id={team_id}",
                          kind="not_found_error", param="team_id")
    return Principal(team_id=team_id, team=team, model_grants=principal.model_grants)


async def show_model(request: web.Request) -> web.Response:
    name = request.match_info["model_id"]
    if name not in visible_models(request, request[PRINCIPAL]):
        return json_response(
            {"detail": f"The model `{name}` does not exist or is not accessible"}, status=404)
    return json_response(_entry(request, name))
