"""Admin UI sessions: a signed, expiring cookie (an HS256 JWT under a key derived from the
master key) naming who logged in, and what an SSO login in progress must find on its way back.

Signed rather than kept server-side: the gateway's cache shares nothing without Redis, and a
session kept in one worker's memory would be unknown to the next worker the browser reaches.
A signed cookie works on every worker and gateway with the same master key. It names only the
user and how they logged in, never their role: a user deleted or re-roled is seen on the next
request. Logout deletes the cookie and, with Redis, also revokes the session id on every
gateway until it would have expired anyway.

A session is refused on a request that changes something unless it carries the session's
CSRF token in ``x-csrf-token``: the token is in a cookie the page's script can read and a
foreign site cannot, so a form posted from elsewhere fails (double submit; the token is inside
the signed session, so it cannot be chosen by whoever plants a cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from ..errors import ClientError
from ..guardrails.call import Principal
from ..store.cache import Cache
from .principals import Principals

COOKIE = "gatehouse_session"
CSRF_COOKIE = "gatehouse_csrf"
CSRF_HEADER = "x-csrf-token"
# LiteLLM's UI keys last 24hr; a session as long.
TTL = 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PASSWORD = "username_password"
SSO = "sso"


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: str
    login_method: str  # PASSWORD (the proxy admin of UI_USERNAME) or SSO (a user row)
    csrf: str
    expires: int


def secure(request: web.Request, base_url: str | None) -> bool:
    """Whether the browser reached the gateway over https (directly, or through the proxy
    PROXY_BASE_URL names)."""
    return request.secure or (base_url or "").startswith("https://")


class Signer:
    """HS256 tokens under a key of their own purpose, derived from the master key: a token
    made for one purpose (a session) is never accepted for another (an SSO login)."""

    def __init__(self, master_key: str, purpose: str):
        self._key = hmac.new(master_key.encode(), purpose.encode(), hashlib.sha256).digest()
        self._purpose = purpose

    def sign(self, claims: dict[str, Any], ttl: int) -> str:
        return jwt.encode({**claims, "aud": self._purpose, "exp": int(time.time()) + ttl},
                          self._key, algorithm="HS256")

    def read(self, token: str) -> dict[str, Any] | None:
        try:
            return jwt.decode(token, self._key, algorithms=["HS256"], audience=self._purpose)
        except jwt.PyJWTError:
            return None


class Sessions:
    def __init__(self, master_key: str, cache: Cache, ttl: int = TTL):
        self._signer = Signer(master_key, "gatehouse-ui-session")
        self.cache = cache
        self.ttl = ttl

    async def start(self, request: web.Request, response: web.StreamResponse, user_id: str,
                    login_method: str, *, https: bool) -> None:
        await self.end(request, response)
        csrf = secrets.token_urlsafe(32)
        token = self._signer.sign({"sid": secrets.token_urlsafe(16), "sub": user_id,
                                   "login_method": login_method, "csrf": csrf}, self.ttl)
        # Lax, not Strict: the browser comes back from the identity provider by a cross-site
        # redirect, and a Strict cookie would not be sent on the page it lands on. Changes are
        # guarded by the CSRF token instead.
        flags = {"max_age": self.ttl, "path": "/", "samesite": "Lax", "secure": https}
        response.set_cookie(COOKIE, token, httponly=True, **flags)
        response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **flags)

    async def find(self, request: web.Request) -> Session | None:
        claims = self._signer.read(request.cookies.get(COOKIE, ""))
        if claims is None:
            return None
        session = Session(claims["sid"], claims["sub"], claims["login_method"], claims["csrf"],
                          claims["exp"])
        if await self.cache.get_json(f"session_ended:{session.session_id}"):
            return None
        return session

    async def end(self, request: web.Request, response: web.StreamResponse) -> None:
        session = await self.find(request)
        if session is not None:
            await self.cache.set_json(f"session_ended:{session.session_id}", True,
                                      max(1, session.expires - int(time.time())))
        if COOKIE in request.cookies:
            response.del_cookie(COOKIE, path="/")
            response.del_cookie(CSRF_COOKIE, path="/")


def check_csrf(request: web.Request, session: Session) -> None:
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(errors="replace"), session.csrf.encode()):
        raise ClientError(403, f"A request made with the UI session cookie must send the "
                               f"session's CSRF token (cookie {CSRF_COOKIE}) in the "
                               f"{CSRF_HEADER} header", kind="auth_error", param="None")


async def session_principal(request: web.Request, sessions: Sessions,
                            principals: Principals) -> Principal | None:
    """The caller a session cookie names, None without one; 401 when the session has ended
    or its user is gone."""
    if COOKIE not in request.cookies:
        return None
    session = await sessions.find(request)
    if session is None:
        raise ClientError(401, "Authentication Error, the UI session has expired or ended; "
                               "log in again", kind="auth_error", param="None")
    check_csrf(request, session)
    if session.login_method == PASSWORD:
        return Principal(is_admin=True, user_id=session.user_id)
    user = await principals.record("user", session.user_id)
    if user is None:
        raise ClientError(401, "Authentication Error, the UI session's user no longer exists",
                          kind="auth_error", param="None")
    return Principal(user_id=session.user_id, user=user)
