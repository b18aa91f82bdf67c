"""The public model hub, as LiteLLM has it: the model groups an operator makes public
(``litellm_settings.public_model_groups``, or ``POST /model_group/make_public``) with their
prices, context sizes and capabilities, for anyone -- ``GET /public/model_hub``, its
``/info``, and a page at ``/ui/model_hub_table`` -- plus the hub's "useful links"
(``public_model_groups_links``, or ``POST /model_hub/update_useful_links``).

Changes through the API are kept in the database (with ``store_model_in_db``, as LiteLLM
requires) and so reach every gateway sharing it; they override the config file's lists. The
hub's routes are public, so the database is read at most once per ``REREAD_EVERY`` seconds
however often they are asked.

``general_settings.enable_public_model_hub`` is LiteLLM's older switch, from before groups were
chosen one by one: it made the whole hub public. So with it on and no groups chosen (in the
config or through the API), every model group served is listed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..access.roles import Rule, is_proxy_admin, role_of
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL
from ..proxy.headers import LITELLM_VERSION
from ..store.config_rows import ConfigRows
from ..ui import render
from .bodies import Body, Reply, parse_body, reply
from .context import ADMIN, Admin, gated
from .models import MODELS, STORE_OFF, Models, _refused, group_info
from .tables import actor

REREAD_EVERY = 1.0
GROUPS, LINKS = "public_model_groups", "public_model_groups_links"
PUBLIC_PATHS = frozenset({"/public/model_hub", "/public/model_hub/info",
                          "/ui/model_hub_table"})


class MakePublic(Body):
    model_groups: list[str]


class UsefulLinks(Body):
    useful_links: dict[str, str]


class HubInfo(Reply):
    docs_title: str
    custom_docs_description: str | None
    litellm_version: str
    useful_links: dict[str, str]


@dataclass(frozen=True, slots=True)
class Branding:
    title: str
    # None unless the operator wrote one (DOCS_DESCRIPTION).
    description: str | None


class ModelHub:
    """What is public: the config's lists, overridden by what the API stored."""

    def __init__(self, groups: list[str], links: dict[str, str], rows: ConfigRows | None, *,
                 everything: bool = False):
        # None: every group (enable_public_model_hub, with none chosen in the config); a list
        # stored through the API overrides it, even an empty one.
        chosen = list(groups) if groups or not everything else None
        self.configured: dict[str, Any] = {GROUPS: chosen, LINKS: dict(links)}
        self.rows = rows
        self._read: tuple[float, dict[str, Any]] = (-REREAD_EVERY, self.configured)

    async def current(self) -> dict[str, Any]:
        read_at, values = self._read
        if self.rows is None or time.monotonic() - read_at < REREAD_EVERY:
            return values
        values = {**self.configured, **await self.rows.get((GROUPS, LINKS))}
        self._read = (time.monotonic(), values)
        return values

    def changed(self) -> None:
        """Read the database on the next look: this gateway sees its own change at once."""
        self._read = (-REREAD_EVERY, self.configured)


HUB = web.AppKey("model_hub", ModelHub)
BRANDING = web.AppKey("model_hub_branding", Branding)


def setup(app: web.Application, admin: Admin, models: Models, branding: Branding, *,
          everything: bool = False) -> frozenset[str]:
    """Register the hub's routes; return those that need no key. ``everything``:
    ``enable_public_model_hub``."""
    app[HUB] = ModelHub(admin.settings.public_model_groups,
                        admin.settings.public_model_groups_links,
                        ConfigRows(admin.store) if models.stored is not None else None,
                        everything=everything)
    app[BRANDING] = branding
    app.router.add_post("/model_group/make_public", make_public)
    app.router.add_post("/model_hub/update_useful_links", update_useful_links)
    app.router.add_get("/public/model_hub", public_model_hub)
    app.router.add_get("/public/model_hub/info", public_model_hub_info)
    app.router.add_get("/ui/model_hub_table", model_hub_page)
    return PUBLIC_PATHS


def _rows(request: web.Request) -> ConfigRows:
    rows = request.app[HUB].rows
    if rows is None:
        raise _refused(500, STORE_OFF)
    return rows


def _require_proxy_admin(request: web.Request, what: str) -> None:
    # LiteLLM's own check, with its 403, rather than the gate's 401 for admin routes.
    principal = request[PRINCIPAL]
    if not is_proxy_admin(principal):
        raise _refused(403, f"{{'error': 'Only proxy admins can update {what}. Your role="
                            f"{role_of(principal)}'}}")


@gated(Rule.SELF)
async def make_public(request: web.Request, admin: Admin) -> web.Response:
    _require_proxy_admin(request, "public model groups")
    rows = _rows(request)
    body = await parse_body(request, MakePublic)
    served = request.app[MODELS].router.routes.groups
    unknown = [name for name in body.model_groups if name not in served]
    if unknown:
        raise ClientError(400, f"Model group(s) not found on proxy: {', '.join(unknown)}",
                          param="model_groups")
    await rows.put(GROUPS, body.model_groups, actor(request))
    request.app[HUB].changed()
    return json_response({"message": "Successfully updated public model groups",
                          GROUPS: body.model_groups, "updated_by": actor(request)})


@gated(Rule.SELF)
async def update_useful_links(request: web.Request, admin: Admin) -> web.Response:
    _require_proxy_admin(request, "useful links")
    rows = _rows(request)
    body = await parse_body(request, UsefulLinks)
    await rows.put(LINKS, body.useful_links, actor(request))
    request.app[HUB].changed()
    return json_response({"message": "Successfully updated model hub", "field_name": LINKS,
                          "field_value": body.useful_links})


async def _listed(request: web.Request) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The public groups that are served, as ``/model_group/info`` shows them, and the links."""
    groups = request.app[MODELS].router.routes.groups
    public = await request.app[HUB].current()
    names = list(groups) if public[GROUPS] is None else public[GROUPS]
    return ([group_info(request.app[ADMIN], name, groups[name], public=True)
             for name in names if name in groups], public[LINKS])


async def public_model_hub(request: web.Request) -> web.Response:
    if not request.app[MODELS].router.routes.groups:
        raise ClientError(400, "No models configured on proxy")
    return json_response((await _listed(request))[0])


async def public_model_hub_info(request: web.Request) -> web.Response:
    branding = request.app[BRANDING]
    return reply(HubInfo, {
        "docs_title": branding.title, "custom_docs_description": branding.description,
        "litellm_version": LITELLM_VERSION,
        "useful_links": (await request.app[HUB].current())[LINKS]})


async def model_hub_page(request: web.Request) -> web.Response:
    groups, links = await _listed(request)
    return render("model_hub.html", title=request.app[BRANDING].title, groups=groups,
                  links=links)
