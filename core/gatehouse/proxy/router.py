"""The model router: requested model names -> deployments -> providers.

Each ``model_list`` entry (and each model stored through ``/model/new``) is a deployment with
an id; the deployments sharing a ``model_name`` form a group, taken in turn (round-robin). A
requested name is resolved in LiteLLM's order (see :meth:`Routes.resolve`): the caller's team
alias or team-scoped model, a group name or deployment id, a
``router_settings.model_group_alias``, a deployment's own ``litellm_params.model``, then the
wildcard groups (``*``, ``openai/*``, ``openai/gpt-4*``), most specific first.

A team-scoped model (``model_info.team_id``, made by a team admin through ``/model/new``) is
stored under an internal name and called by its team's keys under its
``team_public_model_name``; no one else but an admin (or the gateway itself) may call it, by
either name (:func:`may_reach`).

The whole table is rebuilt and swapped in one assignment when the stored models change, so a
call sees either the old models or the new, never half of each.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import orjson

from ..access.model_access import Glob, ModelAccess, glob, team_aliases
from ..access.prices import bundled_prices
from ..config import ConfigError
from ..config.model_list import ModelEntry, ModelParams, provider_of
from ..errors import ClientError
from ..guardrails.call import OPEN, Call, Principal
from ..guardrails.masking import looks_secret, mask
from .providers import Provider
from .providers.mock import FixedReplyProvider

if TYPE_CHECKING:
    import aiohttp

    from ..plugins import Registered

# Providers made for the names a wildcard deployment resolved, kept for reuse; beyond this
# many the oldest goes, so a caller inventing names cannot grow the table without end.
MAX_RESOLVED = 1024
# Seconds a provider no longer routed to is kept before it is closed: calls already given it
# finish first.
RETIRE_AFTER = 900.0

def unknown_model(model: str | None) -> ClientError:
    """LiteLLM's router answer for a model it cannot route (also a missing one): clients look
    for ``litellm.BadRequestError`` and the name."""
    return ClientError(
        400, f"litellm.BadRequestError: You passed in model={model}. There is no 'model_name' "
             f"with this string . Received Model Group={model}\n"
             f"Available Model Group Fallbacks=None", kind=None, param=None)


def deployment_id(model_name: str, params: ModelParams) -> str:
    """A config deployment's id when ``model_info.id`` gives none: the same on every gateway
    reading the same file, so ``x-litellm-model-id`` names one deployment everywhere."""
    shown = params.model_dump(mode="json", exclude={"api_key"})
    return hashlib.sha256(orjson.dumps([model_name, shown], option=orjson.OPT_SORT_KEYS)
                          ).hexdigest()


def wildcard(name: str) -> Glob | None:
    """A wildcard group name as a pattern that says what each ``*`` stood for."""
    return glob(name) if "*" in name else None


@dataclass(slots=True)
class Deployment:
    model_name: str
    params: ModelParams
    model_info: dict[str, Any]
    provider_cls: type[Provider] | None
    db_model: bool = False
    provider: Provider | None = None
    # x-litellm-model-id, -model-api-base, -model-group: the same on every call it serves.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.model_info["id"]

    @property
    def region(self) -> str | None:
        """``litellm_params.region_name``, which end users' ``allowed_model_region`` match."""
        return (self.params.model_extra or {}).get("region_name")

    @property
    def team_id(self) -> str | None:
        team = self.model_info.get("team_id")
        return str(team) if team else None

    @property
    def catch_all(self) -> bool:
        return "*" in self.params.model

    def upstream_for(self, requested: str, captured: tuple[str, ...]) -> str:
        """The ``litellm_params.model`` a call to ``requested`` goes out with: each ``*`` of the
        deployment's model replaced by what the group name's ``*`` captured."""
        model = self.params.model
        if "*" not in model:
            return model
        if model == "*" or len(captured) > model.count("*"):
            return requested
        for text in captured:
            model = model.replace("*", text, 1)
        return model


# Never shown, whatever the route: the upstream credentials themselves.
HIDDEN_PARAMS = frozenset({"api_key", "client_secret", "vertex_credentials",
                           "aws_access_key_id", "aws_secret_access_key", "aws_session_token"})


def shown_params(params: ModelParams) -> dict[str, Any]:
    """A deployment's ``litellm_params`` as routes may show them: credentials left out, other
    secret-looking values masked, header values (which often carry a token) masked."""
    shown = {}
    for name, value in params.model_dump(mode="json").items():
        if name in HIDDEN_PARAMS or value is None:
            continue
        if name == "headers":
            value = {header: mask(str(v), show_last=True) for header, v in value.items()}
        elif looks_secret(name):
            value = mask(str(value), show_last=True)
        shown[name] = value
    return shown


def deployment_headers(deployment: Deployment) -> dict[str, str]:
    # The gateway never retries; a fallback (proxy/fallbacks.py) sets its own count.
    headers = {"x-litellm-model-id": deployment.id,
               "x-litellm-model-group": deployment.model_name,
               "x-litellm-attempted-retries": "0", "x-litellm-attempted-fallbacks": "0"}
    base = deployment.params.api_base
    if base:
        headers["x-litellm-model-api-base"] = base.split("?", 1)[0]
    return headers


def known_models(pattern: Glob, group: str) -> list[str]:
    provider = group.split("/", 1)[0] if "/" in group else None
    if provider is None or "*" in provider:
        return []
    return [name for model in bundled_prices() if provider_of(model) == provider
            and pattern.match(name := f"{provider}/{model}") is not None]


def may_reach(principal: Principal, team: str | None) -> bool:
    """Whether ``principal`` may call a deployment owned by ``team`` (None: by no team).

    A team-scoped deployment serves callers of its team -- its virtual keys, JWTs naming it --
    admins, and the gateway itself (OPEN: its own calls, or a gateway without a master key);
    anyone else is told it does not exist."""
    return team is None or team == principal.team_id or principal.is_admin \
        or principal.all_teams


def may_call(principal: Principal, deployment: Deployment) -> bool:
    return may_reach(principal, deployment.team_id)


class Routes:
    """One immutable routing table: what a requested name resolves to."""

    def __init__(self, deployments: list[Deployment], aliases: Mapping[str, tuple[str, bool]]):
        self.deployments = deployments
        self.groups: dict[str, list[Deployment]] = {}
        for deployment in deployments:
            self.groups.setdefault(deployment.model_name, []).append(deployment)
        self.by_id = {d.id: d for d in deployments}
        self.by_params_model: dict[str, str] = {}
        for deployment in deployments:
            self.by_params_model.setdefault(deployment.params.model, deployment.model_name)
        self.aliases = {alias: target for alias, (target, _) in aliases.items()
                        if target in self.groups}
        self.shown_aliases = tuple(alias for alias, (target, hidden) in aliases.items()
                                   if not hidden and alias in self.aliases)
        # Longest pattern first: the most specific wildcard wins.
        self.wildcards = sorted(((pattern, name) for name in self.groups
                                 if (pattern := wildcard(name)) is not None),
                                key=lambda item: -len(item[1]))
        # What /v1/models lists beside each wildcard group: the bundled catalogue's models of
        # the provider its name names, where the name matches them (openai/* -> openai/gpt-4o).
        self.known: dict[str, list[str]] = {name: known_models(pattern, name)
                                            for pattern, name in self.wildcards}
        self.rotation: dict[str, Iterator[Deployment]] = {
            name: itertools.cycle(group) for name, group in self.groups.items()}
        self.model_names = tuple(self.groups)
        groups: dict[str, set[str]] = {}
        for deployment in deployments:
            for group in deployment.model_info.get("access_groups") or ():
                groups.setdefault(str(group), set()).add(deployment.model_name)
        self.access_groups = {name: frozenset(members) for name, members in groups.items()}
        # Team-scoped groups: internal name -> owning team; (team, public name) -> group.
        self.team_owned: dict[str, str] = {}
        self.team_public: dict[tuple[str, str], str] = {}
        for deployment in deployments:
            if (team := deployment.team_id) is not None:
                self.team_owned[deployment.model_name] = team
                public = deployment.model_info.get("team_public_model_name")
                if isinstance(public, str):
                    self.team_public[(team, public)] = deployment.model_name

    def names_for(self, principal: Principal) -> list[str]:
        """The served model names as a caller sees them: other teams' models left out, its
        own team's under their public names."""
        if principal.is_admin or principal.all_teams or not self.team_owned:
            return list(self.model_names)
        public = {group: name for (team, name), group in self.team_public.items()
                  if team == principal.team_id}
        return [public.get(name, name) for name in self.model_names
                if self.team_owned.get(name, principal.team_id) == principal.team_id]

    def resolve(self, model: str) -> tuple[str, Deployment, tuple[str, ...]] | None:
        """``(group, deployment, wildcard captures)`` for a requested name, or None."""
        found = self.group_of(model)
        if found is None:
            return None
        group, captured = found
        # A deployment named by its id is that one; a group's are taken in turn.
        named = self.by_id.get(model) if model not in self.groups else None
        return group, named or next(self.rotation[group]), captured

    def group_of(self, model: str) -> tuple[str, tuple[str, ...]] | None:
        """``(group, wildcard captures)`` a requested name resolves to, or None."""
        if model in self.groups:
            return model, ()
        if (by_id := self.by_id.get(model)) is not None:
            return by_id.model_name, ()
        group = self.aliases.get(model) or self.by_params_model.get(model)
        if group is not None:
            return group, ()
        # A bare name is also tried with the provider it implies (gpt-4o as openai/gpt-4o).
        names = (model,) if "/" in model else (model, f"{provider_of(model)}/{model}")
        for name in names:
            for pattern, group in self.wildcards:
                if (found := pattern.match(name)) is not None:
                    return group, found
        return None

    def in_region(self, group: str, chosen: Deployment, region: str,
                  requested: str) -> Deployment:
        """An end user held to ``allowed_model_region`` is served only by deployments whose
        ``region_name`` is that region: ``chosen`` if it is one, else the group's next one."""
        if chosen.region == region:
            return chosen
        if chosen is not self.by_id.get(requested):  # a deployment named by id is that one
            for _ in self.groups.get(group, ()):
                deployment = next(self.rotation[group])
                if deployment.region == region:
                    return deployment
        # LiteLLM's router finds no deployment left; its proxy answers that as a 429.
        raise ClientError(429, f"No deployments available for selected model. Passed model="
                               f"{requested}; none is in allowed_model_region={region}",
                          kind=None, param=None)


class Router:
    def __init__(self, model_list: list[ModelEntry], providers: dict[str, Registered],
                 source: str, aliases: Mapping[str, tuple[str, bool]] | None = None,
                 access: ModelAccess | None = None):
        self.providers = providers
        self.access = access or ModelAccess()
        self.aliases = dict(aliases or {})
        unknown = []
        self.config_deployments = []
        for i, entry in enumerate(model_list):
            try:
                self.config_deployments.append(self.deployment(entry.model_name, entry.params,
                                                               entry.model_info))
            except ValueError as exc:
                unknown.append(f"model_list[{i}].{entry.written('params')}.model: {exc}")
        if unknown:
            raise ConfigError.in_file(source, *unknown)
        self.http: aiohttp.ClientSession | None = None
        self._resolved: dict[tuple[str, str], Provider] = {}
        # Providers no longer routed to, each closed by its task after RETIRE_AFTER.
        self._retiring: dict[asyncio.Task[None], Provider] = {}
        self._live: list[Provider] = []
        self.routes = Routes([], {})
        self._install(self.config_deployments)

    def deployment(self, model_name: str, params: ModelParams, model_info: dict[str, Any],
                   *, db_model: bool = False) -> Deployment:
        """A deployment of ``params``; ValueError naming the problem when no installed
        provider serves it."""
        cls = None
        if params.model != "*":
            registered = self.providers.get(params.provider)
            if registered is None:
                raise ValueError(f"unknown provider {params.provider!r} in {params.model!r}; "
                                 f"installed providers: "
                                 f"{', '.join(sorted(self.providers)) or 'none'}")
            cls = registered.obj
        info = {**model_info, "id": str(model_info.get("id") or
                                        deployment_id(model_name, params))}
        made = Deployment(model_name, params, info, cls, db_model)
        made.headers = deployment_headers(made)
        return made

    @property
    def model_names(self) -> tuple[str, ...]:
        return self.routes.model_names

    @property
    def started(self) -> bool:
        return self.http is not None

    def start(self, http: aiohttp.ClientSession) -> None:
        """Make the providers, on the one pooled session every upstream call shares."""
        self.http = http
        self._install(self.routes.deployments)

    def replace_stored(self, stored: Iterable[Deployment]) -> None:
        """Serve the config's models and ``stored`` from now on (one swap). Providers of
        deployments that are unchanged are kept; the others are closed once calls given them
        have had time to finish."""
        self._install([*self.config_deployments, *stored])

    def _install(self, deployments: list[Deployment]) -> None:
        old = {(d.id, d.params.model_dump_json()): d.provider
               for d in self.routes.deployments if d.provider is not None}
        if self.http is not None:
            for deployment in deployments:
                if deployment.provider is None and deployment.provider_cls is not None:
                    deployment.provider = old.pop(
                        (deployment.id, deployment.params.model_dump_json()), None
                    ) or deployment.provider_cls(deployment.model_name, deployment.params,
                                                 self.http)
        self.routes = routes = Routes(deployments, self.aliases)
        self.access.groups = routes.access_groups
        self.access.providers = {name: group[0].params.provider
                                 for name, group in routes.groups.items()
                                 if not group[0].catch_all}
        self._live = [d.provider for d in deployments if d.provider is not None]
        for provider in [*old.values(), *self._resolved.values()]:
            if provider not in self._live:
                self._retire(provider)
        self._resolved.clear()

    def _retire(self, provider: Provider) -> None:
        async def close_later() -> None:
            await asyncio.sleep(RETIRE_AFTER)
            await provider.close()
        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = provider
        task.add_done_callback(lambda done: self._retiring.pop(done, None))

    async def close(self) -> None:
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        for provider in {*self._live, *self._resolved.values(),
                         *(provider for _, provider in retiring)}:
            await provider.close()

    def provider_for(self, call: Call, mock_response: str | None = None) -> Provider:
        """The provider for ``call``, team and group aliases resolved (``call.model`` becomes
        the name a team alias stands for); 400 when nothing serves the name. The reply will
        name the deployment in its ``x-litellm-model-*`` headers."""
        principal, routes = call.principal, self.routes
        call.model = self.named(principal, call.model)
        found = routes.resolve(call.model)
        if found is None or not may_call(principal, found[1]):
            raise unknown_model(call.model)
        group, deployment, captured = found
        region = (call.end_user or {}).get("allowed_model_region")
        if region:
            deployment = self.routes.in_region(group, deployment, region, call.model)
            call.response_headers["x-litellm-model-region"] = region
        call.response_headers.update(deployment.headers)
        upstream = deployment.upstream_for(call.model, captured)
        provider = deployment.provider
        if upstream != deployment.params.model or provider is None:
            provider = self.provider_at(deployment, upstream, call.model)
        if mock_response is not None:
            return FixedReplyProvider(mock_response, provider.model_name, provider.params,
                                      provider.http)
        return provider

    def named(self, principal: Principal, model: str) -> str:
        """The name ``model`` stands for when ``principal`` asks for it: its team's alias or
        team-scoped model, else itself."""
        return team_aliases(principal).get(model) or self.routes.team_public.get(
            (principal.team_id or "", model), model)

    def serves(self, principal: Principal, model: str) -> bool:
        """Whether ``model`` names a deployment ``principal`` may call (as :meth:`provider_for`
        resolves it, without taking a group's turn)."""
        routes = self.routes
        found = routes.group_of(self.named(principal, model))
        return found is not None and may_reach(principal, routes.team_owned.get(found[0]))

    def provider_at(self, deployment: Deployment, upstream: str, requested: str) -> Provider:
        """The provider of a wildcard deployment for one resolved upstream name."""
        key = (deployment.id, upstream)
        provider = self._resolved.get(key)
        if provider is not None:
            return provider
        params = deployment.params.model_copy(update={"model": upstream})
        registered = self.providers.get(params.provider)
        if registered is None or self.http is None:
            raise unknown_model(requested)
        provider = registered.obj(deployment.model_name, params, self.http)
        if len(self._resolved) >= MAX_RESOLVED:
            self._retire(self._resolved.pop(next(iter(self._resolved))))
        self._resolved[key] = provider
        return provider

    async def complete(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A chat completion on one of the gateway's own models, without guardrails -- for
        plugins that ask a model (e.g. a Llama Guard deployment). Raises UpstreamError."""
        call = Call(request_id=request_id, call_type="chat_completion", model=model_name,
                    body={**body, "stream": False}, principal=OPEN)
        return (await self.provider_for(call).complete(call)).data

    async def moderate(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A moderation (``POST /moderations``, ``body`` holding its ``input``) on one of the
        gateway's own models -- for plugins that ask a moderation model. Raises
        UpstreamError."""
        call = Call(request_id=request_id, call_type="moderation", model=model_name,
                    body=dict(body), principal=OPEN)
        return (await self.provider_for(call).complete(call)).data
