"""The admin UI at ``/ui``: one server-rendered shell per page, whose script reads and changes
everything through the admin API a script would use, with the UI session cookie standing for
a key (access/sessions.py). The pages hold no data of their own, so a role sees in the UI
exactly what the API lets it read, and a button it may not press is hidden as well as refused.

A page a role may not open answers 403; a browser without a session is sent to ``/login``.
"""

from __future__ import annotations

import importlib.resources
import mimetypes
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, get_args

from aiohttp import web

from ..access.principals import Principals
from ..access.roles import (INTERNAL_USER, PROXY_ADMIN, PROXY_ADMIN_VIEWER, reads_everything,
                            role_of)
from ..access.sessions import CSRF_COOKIE, Sessions, session_principal
from ..errors import ClientError
from ..guardrails.call import Principal
from ..config import Config
from ..store.audit import TABLE_NAMES, Action
from . import render, settings, wants_json

PREFIX = "/ui"
# Scripts and styles come from the gateway alone: an injected tag could load nothing.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def content_policy(logout_url: str | None) -> str:
    """The pages' CSP. Forms post to the gateway alone -- and to where logging out sends the
    browser on (PROXY_LOGOUT_URL): the policy covers the redirect after a form's post."""
    targets = "'self'"
    if logout_url:
        parts = urllib.parse.urlsplit(logout_url)
        targets += f" {parts.scheme}://{parts.netloc}"
    return (f"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            f"form-action {targets}; base-uri 'none'")


EVERYONE = frozenset({PROXY_ADMIN, PROXY_ADMIN_VIEWER, INTERNAL_USER, "internal_user_viewer"})
ADMINS = frozenset({PROXY_ADMIN, PROXY_ADMIN_VIEWER})

# The page's own server-side context, beyond who is looking: for what the admin API does not
# answer (the effective config, say).
Context = Callable[[web.Request, Principal], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    # The roles that see the page in the navigation and may open it.
    roles: frozenset[str] = EVERYONE
    context: Context | None = None


async def _audit_filters(request: web.Request, principal: Principal) -> dict[str, Any]:
    return {"tables": sorted(set(TABLE_NAMES.values())), "actions": get_args(Action)}


async def _models_settings(request: web.Request, principal: Principal) -> dict[str, Any]:
    # Whether models can be added here: the admin API answers only by refusing the change.
    return {"models_in_db": request.app[settings.CONFIG].general_settings.models_in_db}


PAGES: dict[str, Page] = {page.name: page for page in (
    Page("keys", "Keys"),
    Page("teams", "Teams"),
    Page("organizations", "Organizations", ADMINS),
    Page("users", "Internal users", ADMINS),
    Page("customers", "Customers", ADMINS),
    Page("budgets", "Budgets", ADMINS),
    Page("usage", "Usage"),
    Page("logs", "Logs"),
    Page("guardrails", "Guardrails"),
    Page("models", "Models", context=_models_settings),
    Page("audit", "Audit log", ADMINS, _audit_filters),
    # The proxy admin alone: LiteLLM shows its viewers no settings.
    Page("settings", "Settings", frozenset({PROXY_ADMIN}), settings.context),
)}
HOME = "keys"


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, as the templates and scripts need it."""

    user_id: str | None
    role: str
    # May press buttons that change things. The API decides each action; this only hides
    # what it would refuse anyway.
    can_edit: bool
    reads_everything: bool

    @classmethod
    def of(cls, principal: Principal) -> "Viewer":
        role = role_of(principal)
        return cls(principal.user_id, role, role in (PROXY_ADMIN, INTERNAL_USER),
                   reads_everything(principal))


SESSIONS = web.AppKey("ui_sessions", Sessions)
HEADERS = web.AppKey("ui_headers", dict)
# general_settings.ui_access_mode: admin_only
ADMIN_ONLY = web.AppKey("ui_admin_only", bool)
PRINCIPALS = web.AppKey("ui_principals", Principals)


# The UI's routes; the same with the UI on or off, so DISABLE_ADMIN_UI changes no other route.
PATHS = (PREFIX, f"{PREFIX}/", f"{PREFIX}/static/{{name}}", f"{PREFIX}/{{page}}")
DISABLED = ("The admin UI is disabled on this gateway (DISABLE_ADMIN_UI=true). The management "
            "API answers as before, with a key.")


def setup(app: web.Application, sessions: Sessions, principals: Principals,
          config: Config, *, admin_only: bool, logout_url: str | None) -> None:
    app[SESSIONS] = sessions
    app[PRINCIPALS] = principals
    app[ADMIN_ONLY] = admin_only
    app[HEADERS] = {**SECURITY_HEADERS,
                    "Content-Security-Policy": content_policy(logout_url)}
    app[settings.CONFIG] = config
    app[ASSETS] = _load_assets()
    for path, handler in zip(PATHS, (home, home, static, page)):
        app.router.add_get(path, handler)


def setup_disabled(app: web.Application) -> None:
    """DISABLE_ADMIN_UI=true: the UI's routes say it is off, rather than asking for a key
    that would not open it either."""
    for path in PATHS:
        app.router.add_get(path, disabled)


async def disabled(request: web.Request) -> web.Response:
    """What the UI's routes, and the login routes, answer with DISABLE_ADMIN_UI=true: 404,
    as a page for a browser, in the OpenAI error shape for a client asking for JSON."""
    if wants_json(request):
        raise ClientError(404, DISABLED, kind="not_found_error")
    response = render("ui_disabled.html", message=DISABLED)
    response.set_status(404)
    response.headers.update(SECURITY_HEADERS)
    return response


def is_ui_page(request: web.Request) -> bool:
    """Whether the request reached one of the UI's own routes, whose handlers find the caller
    themselves: a browser without a session is sent to the login page rather than answered
    with a JSON 401. Decided by the matched route, not the path: anything else under /ui/
    (a pass-through endpoint, a plugin's route) keeps the gateway's own auth."""
    return request.match_info.handler in _UI_HANDLERS


def _to_login(request: web.Request) -> web.Response:
    target = urllib.parse.quote(request.path_qs, safe="")
    return web.Response(status=303, headers={"Location": f"/login?next={target}"})


async def _viewer(request: web.Request) -> Principal | None:
    try:
        return await session_principal(request, request.app[SESSIONS], request.app[PRINCIPALS])
    except ClientError:
        # An ended session or a deleted user: logging in again is the way on.
        return None


async def home(request: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": f"{PREFIX}/{HOME}"})


async def page(request: web.Request) -> web.Response:
    found = PAGES.get(request.match_info["page"])
    if found is None:
        raise web.HTTPNotFound()
    principal = await _viewer(request)
    if principal is None:
        return _to_login(request)
    viewer = Viewer.of(principal)
    # ui_access_mode: admin_only holds for the whole session, not only at login: a user
    # re-roled since is out on their next page.
    if viewer.role not in found.roles or (request.app[ADMIN_ONLY]
                                          and viewer.role not in ADMINS):
        response = _render("ui/forbidden.html", request, found, viewer)
        response.set_status(403)
        return response
    extra = await found.context(request, principal) if found.context else {}
    return _render(f"ui/{found.name}.html", request, found, viewer, **extra)


def _render(template: str, request: web.Request, current: Page, viewer: Viewer,
            **extra: Any) -> web.Response:
    nav = [p for p in PAGES.values() if viewer.role in p.roles]
    response = render(template, page=current, nav=nav, viewer=viewer,
                      has_csrf=CSRF_COOKIE in request.cookies, **extra)
    response.headers.update(request.app[HEADERS])
    return response


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of static/ with its content type, read once at start: no request waits on
    the disk, and no path can reach outside the folder."""
    folder = importlib.resources.files("gatehouse.ui") / "static"
    return {item.name: (item.read_bytes(),
                        mimetypes.guess_type(item.name)[0] or "application/octet-stream")
            for item in folder.iterdir() if item.is_file()}


ASSETS = web.AppKey("ui_assets", dict)


async def static(request: web.Request) -> web.Response:
    found = request.app[ASSETS].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, kind = found
    return web.Response(body=body, content_type=kind,
                        headers={"Cache-Control": "public, max-age=300",
                                 "X-Content-Type-Options": "nosniff"})


_UI_HANDLERS = frozenset({home, page, static, disabled})
