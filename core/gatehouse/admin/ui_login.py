"""Logging in to the admin UI: UI_USERNAME/UI_PASSWORD at /login, SSO at /sso/key/generate
and /sso/callback (admin/sso.py), /logout, and the settings the UI reads before anyone has
logged in. A login starts a session (access/sessions.py); no key is minted for it.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import aiohttp
from aiohttp import web

from ..access.login_throttle import LoginThrottle
from ..access.roles import INTERNAL_USER_VIEWER, PROXY_ADMIN, PROXY_ADMIN_VIEWER, USER_ROLES
from ..access.sessions import PASSWORD, SSO, Sessions, Signer, secure
from ..config import ConfigError
from ..config.general_settings import GeneralSettings
from ..errors import ClientError, json_response
from ..guardrails.call import CLIENT_IP
from ..store.cache import Cache
from ..ui import pages, render, wants_json
from .context import ADMIN
from .memberships import USERS
from .sso import PENDING_TTL, Claims, OidcClient, provider_from_env, sso_error

STATE_COOKIE = "gatehouse_sso_state"
# LiteLLM's id for the admin who logs in with UI_USERNAME/UI_PASSWORD.
PASSWORD_USER_ID = "default_user_id"
SESSIONS = web.AppKey("sessions", Sessions)
THROTTLE = web.AppKey("ui_login_throttle", LoginThrottle)


@dataclass(frozen=True)
class UiLogin:
    username: str
    password: str | None
    base_url: str | None
    logout_url: str | None
    admin_id: str | None
    allowed_domains: tuple[str, ...]
    admin_only: bool
    default_team_disabled: bool
    sso: OidcClient | None
    ui_disabled: bool
    # Signs what an SSO login in progress keeps in the browser.
    pending: Signer

    def redirect_uri(self, request: web.Request) -> str:
        base = self.base_url or f"{request.scheme}://{request.host}"
        return base.rstrip("/") + "/sso/callback"


LOGIN = web.AppKey("ui_login", UiLogin)


def login_from_env(env: Mapping[str, str], master_key: str | None, general: GeneralSettings,
                   http: Callable[[], aiohttp.ClientSession]) -> UiLogin:
    """The login settings; a set-up that would let anyone in, or no one, stops the start."""
    provider = provider_from_env(env)
    password = env.get("UI_PASSWORD") or None
    if master_key is None and (password or provider):
        raise ConfigError(f"{'UI_PASSWORD' if password else 'SSO'} is set but "
                          f"general_settings.master_key is not: without a master key the "
                          f"gateway checks no caller, and a UI login would protect nothing")
    domains = tuple(d.strip().lower() for d in (env.get("ALLOWED_EMAIL_DOMAINS") or "").split(",")
                    if d.strip())
    return UiLogin(
        username=env.get("UI_USERNAME") or "admin", password=password or master_key,
        base_url=env.get("PROXY_BASE_URL") or None, logout_url=env.get("PROXY_LOGOUT_URL") or None,
        admin_id=env.get("PROXY_ADMIN_ID") or None, allowed_domains=domains,
        admin_only=general.ui_access_mode == "admin_only",
        default_team_disabled=bool(getattr(general, "default_team_disabled", False)) or
        (env.get("PROXY_DEFAULT_TEAM_DISABLED") or "").lower() == "true",
        sso=OidcClient(provider, http) if provider else None,
        ui_disabled=(env.get("DISABLE_ADMIN_UI") or "").lower() == "true",
        pending=Signer(signing_key(master_key), "gatehouse-sso-login"))


def signing_key(master_key: str | None) -> str:
    # Without a master key nobody logs in (login_from_env sees to it): a key no one knows.
    return master_key or secrets.token_hex(32)


def setup(app: web.Application, general: GeneralSettings, master_key: str | None, cache: Cache,
          http: Callable[[], aiohttp.ClientSession],
          env: Mapping[str, str] = os.environ) -> frozenset[str]:
    """Add the login routes; returns the paths open to callers without a key."""
    app[SESSIONS] = Sessions(signing_key(master_key), cache)
    login = app[LOGIN] = login_from_env(env, master_key, general, http)
    app.router.add_get("/.well-known/litellm-ui-config", ui_config)
    if login.ui_disabled:
        # Where a login would begin, the browser is told the UI is off.
        entrances = ("/login", "/fallback/login", "/sso/key/generate", "/sso/callback")
        for path in entrances:
            app.router.add_get(path, pages.disabled)
        app.router.add_post("/login", pages.disabled)
        return frozenset({"/.well-known/litellm-ui-config", *entrances})
    app[THROTTLE] = LoginThrottle(cache, per_username=general.ui_login_max_failures_per_username,
                                  per_address=general.ui_login_max_failures_per_ip,
                                  window=general.ui_login_failure_window)
    app.router.add_get("/login", login_page)
    app.router.add_get("/fallback/login", login_page)
    app.router.add_post("/login", password_login)
    app.router.add_get("/logout", logout_page)
    app.router.add_post("/logout", logout)
    app.router.add_get("/sso/key/generate", sso_start)
    app.router.add_get("/sso/callback", sso_callback)
    app.router.add_get("/sso/get/ui_settings", ui_settings)
    return frozenset({"/.well-known/litellm-ui-config", "/login", "/fallback/login", "/logout",
                      "/sso/key/generate", "/sso/callback", "/sso/get/ui_settings"})


def _redirect(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _next_page(value: object) -> str | None:
    """Where the browser was going when it was sent to log in: a page of the UI only, so a
    link to /login cannot send someone who logs in to another site."""
    target = str(value or "")
    return target if target.startswith("/ui/") and "\\" not in target else None


def _page(request: web.Request, error: str | None = None, status: int = 200,
          next_page: str | None = None) -> web.Response:
    response = render("login.html", error=error, sso=request.app[LOGIN].sso is not None,
                      next_page=next_page or _next_page(request.query.get("next")))
    response.set_status(status)
    return response


async def login_page(request: web.Request) -> web.Response:
    return _page(request)


async def _landing(request: web.Request, user_id: str, method: str,
                   next_page: str | None = None) -> web.Response:
    login = request.app[LOGIN]
    response = _redirect(next_page or f"/ui/?userID={urllib.parse.quote(user_id, safe='')}")
    await request.app[SESSIONS].start(request, response, user_id, method,
                                      https=secure(request, login.base_url))
    return response


def _refused(request: web.Request, status: int, message: str, kind: str,
             next_page: str | None = None, headers: Mapping[str, str] | None = None
             ) -> web.Response:
    """The login form again with why, for a browser; the OpenAI error shape for a client
    asking for JSON."""
    if wants_json(request):
        raise ClientError(status, message, kind=kind, headers=headers)
    response = _page(request, message, status=status, next_page=next_page)
    response.headers.update(headers or {})
    return response


async def password_login(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    if login.password is None:
        return _refused(request, 500, "set Proxy master key to use UI. Set UI_USERNAME and "
                                      "UI_PASSWORD or general_settings.master_key",
                        "internal_error")
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_page = _next_page(form.get("next"))
    throttle = request.app[THROTTLE]
    attempt = await throttle.attempt(username, request.get(CLIENT_IP))
    if attempt.retry_after is not None:
        minutes = math.ceil(attempt.retry_after / 60)
        return _refused(request, 429, f"Too many failed login attempts. Try again in {minutes} "
                                      f"minute{'s' if minutes > 1 else ''}.",
                        "rate_limit_error", next_page,
                        headers={"Retry-After": str(attempt.retry_after)})
    # Both compared, always: which one was wrong is not told by the time taken.
    right = hmac.compare_digest(username.encode(errors="replace"), login.username.encode())
    right &= hmac.compare_digest(password.encode(errors="replace"), login.password.encode())
    if not right:
        return _refused(request, 401, "Invalid credentials used to access UI. Check UI_USERNAME "
                                      "and UI_PASSWORD.", "auth_error", next_page)
    await throttle.succeeded(attempt)
    return await _landing(request, PASSWORD_USER_ID, PASSWORD, next_page)


async def logout_page(request: web.Request) -> web.Response:
    """A link to /logout asks first: a GET that ended the session would let any site end it
    (the Lax cookie is sent on a cross-site link)."""
    return render("logout.html")


async def logout(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    response = _redirect(login.logout_url or "/login")
    await request.app[SESSIONS].end(request, response)
    return response


async def sso_start(request: web.Request) -> web.StreamResponse:
    login = request.app[LOGIN]
    if login.sso is None:
        return _page(request)
    url, pending = await login.sso.authorization_url(login.redirect_uri(request))
    response = _redirect(url, 302)
    # The login in progress stays with this browser: a callback carrying someone else's login
    # (login CSRF) finds no state of its own, and the cookie goes once the login is done.
    response.set_cookie(STATE_COOKIE, login.pending.sign(pending, PENDING_TTL),
                        max_age=PENDING_TTL, path="/sso", httponly=True, samesite="Lax",
                        secure=secure(request, login.base_url))
    return response


async def sso_callback(request: web.Request) -> web.StreamResponse:
    login = request.app[LOGIN]
    if login.sso is None:
        raise sso_error(400, "SSO is not configured on this gateway")
    query = request.query
    if "error" in query:
        raise sso_error(401, f"SSO login failed: the identity provider answered "
                             f"{query['error']}")
    code, state = query.get("code"), query.get("state")
    if not code or not state:
        raise sso_error(400, "The SSO callback needs both code and state")
    pending = login.pending.read(request.cookies.get(STATE_COOKIE, ""))
    if pending is None or not secrets.compare_digest(
            pending["state"].encode(), state.encode(errors="replace")):
        raise sso_error(400, "Invalid or expired SSO state: start the login again at "
                             "/sso/key/generate")
    claims = await login.sso.identity(code, pending)
    user_id, email, role = _identity(claims, login.sso.provider.claims)
    _check_domain(login, email)
    user = await _upsert(request, login, user_id, email, role)
    if login.admin_only and user["user_role"] not in (PROXY_ADMIN, PROXY_ADMIN_VIEWER):
        raise sso_error(401, f"User not allowed to access proxy. User role={user['user_role']}, "
                             f"proxy mode=admin_only")
    response = await _landing(request, user_id, SSO)
    response.del_cookie(STATE_COOKIE, path="/sso")
    return response


def _claim(claims: Mapping[str, Any], name: str | None) -> str | None:
    value = claims.get(name) if name else None
    return str(value) if value not in (None, "") else None


def _identity(claims: Mapping[str, Any], names: Claims) -> tuple[str, str | None, str | None]:
    """The user id (falling back to first and last name, then email), email and role."""
    email = _claim(claims, names.email)
    first, last = _claim(claims, names.first_name), _claim(claims, names.last_name)
    user_id = _claim(claims, names.user_id) or (
        f"{first or ''}{last or ''}" if first or last else None) or email
    if user_id is None:
        raise sso_error(401, f"SSO login failed: the identity names no user (claims "
                             f"{names.user_id!r} and {names.email!r} are missing)")
    return user_id, email, _claim(claims, names.role)


def _check_domain(login: UiLogin, email: str | None) -> None:
    if not login.allowed_domains:
        return
    domain = (email or "").rpartition("@")[2].lower()
    if domain not in login.allowed_domains:
        raise sso_error(401, f"The email domain={domain}, is not an allowed email domain="
                             f"{list(login.allowed_domains)}. Contact your admin to change this.")


async def _upsert(request: web.Request, login: UiLogin, user_id: str, email: str | None,
                  claimed_role: str | None) -> dict[str, Any]:
    """The user's row, made at their first login: PROXY_ADMIN_ID is a proxy admin, anyone else
    takes the role the provider claims (only read when GENERIC_USER_ROLE_ATTRIBUTE names its
    claim), else internal_user_viewer. A stored role is kept."""
    admin = request.app[ADMIN]
    wanted = PROXY_ADMIN if user_id == login.admin_id else None
    user = await admin.store.get_row("users", user_id)
    if user is None:
        now = time.time()
        role = wanted or (claimed_role if claimed_role in USER_ROLES else INTERNAL_USER_VIEWER)
        return await USERS.create(request, user_id, {
            "user_id": user_id, "user_email": email, "user_role": role, "created_at": now,
            "updated_at": now})
    if wanted and user["user_role"] != wanted:
        return await USERS.update(request, user_id, user_id, {"user_role": wanted,
                                                              "updated_at": time.time()})
    return user


async def ui_settings(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    return json_response({"PROXY_BASE_URL": login.base_url, "PROXY_LOGOUT_URL": login.logout_url,
                          "DEFAULT_TEAM_DISABLED": login.default_team_disabled})


async def ui_config(request: web.Request) -> web.Response:
    login = request.app[LOGIN]
    return json_response({"server_root_path": "/", "proxy_base_url": login.base_url,
                          "auto_redirect_to_sso": login.sso is not None,
                          "admin_ui_disabled": login.ui_disabled})
