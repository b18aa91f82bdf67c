"""SSO for the admin UI: the identity provider LiteLLM's environment names (Google, then
Microsoft, then a generic OIDC one) and the authorization-code flow against it, with state,
nonce and PKCE (S256).

The identity is read from the id_token, verified against the provider's JWKS with PyJWT where
the provider publishes one, and from the userinfo endpoint, whose answer wins (LiteLLM reads
userinfo alone).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import urllib.parse
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping

import aiohttp
import jwt

from ..config import ConfigError
from ..errors import ClientError

# How long a browser has to come back from the provider.
PENDING_TTL = 600
TIMEOUT = aiohttp.ClientTimeout(total=15)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


@dataclass(frozen=True, slots=True)
class Claims:
    """Which claim holds each part of the identity (GENERIC_USER_*_ATTRIBUTE)."""

    user_id: str = "sub"
    email: str = "email"
    display_name: str = "name"
    first_name: str = "given_name"
    last_name: str = "family_name"
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    issuer: str | None = None
    discovery_url: str | None = None
    scope: str = "openid email profile"
    claims: Claims = Claims()
    # GENERIC_CLIENT_STATE: a fixed state some set-ups expect; a random one otherwise.
    fixed_state: str | None = None


def _need(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"{name} not set. Set it in .env file")
    return value


def provider_from_env(env: Mapping[str, str] = os.environ) -> Provider | None:
    """The configured provider (Google, Microsoft, generic: LiteLLM's order), or None. A client
    id without its secret or endpoints stops the start."""
    if env.get("GOOGLE_CLIENT_ID"):
        return Provider(
            "google", env["GOOGLE_CLIENT_ID"], _need(env, "GOOGLE_CLIENT_SECRET"),
            discovery_url="https://accounts.google.com/.well-known/openid-configuration")
    if env.get("MICROSOFT_CLIENT_ID"):
        tenant = _need(env, "MICROSOFT_TENANT")
        return Provider(
            "microsoft", env["MICROSOFT_CLIENT_ID"], _need(env, "MICROSOFT_CLIENT_SECRET"),
            discovery_url=f"https://login.microsoftonline.com/{tenant}/v2.0/"
                          f".well-known/openid-configuration")
    if not env.get("GENERIC_CLIENT_ID"):
        return None
    secret = _need(env, "GENERIC_CLIENT_SECRET")
    # GENERIC_DISCOVERY_URL (gatehouse's own): the endpoints, JWKS and issuer from the
    # provider's discovery document; the three endpoint variables, set, still win.
    discovery = env.get("GENERIC_DISCOVERY_URL") or None
    endpoints = {name: env.get(f"GENERIC_{name.upper()}") or None
                 for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")}
    if discovery is None:
        for name in endpoints:
            _need(env, f"GENERIC_{name.upper()}")
    # No role claim unless GENERIC_USER_ROLE_ATTRIBUTE names one: where users may edit their
    # own attributes, a "role" read by default would let them make themselves proxy admins.
    default = Claims(user_id="preferred_username", email="email", display_name="sub",
                     first_name="first_name", last_name="last_name")
    claims = Claims(**{name: env.get(f"GENERIC_USER_{name.upper()}_ATTRIBUTE") or value
                       for name, value in asdict(default).items()})
    return Provider("generic", env["GENERIC_CLIENT_ID"], secret, discovery_url=discovery,
                    scope=env.get("GENERIC_SCOPE") or "openid email profile", claims=claims,
                    fixed_state=env.get("GENERIC_CLIENT_STATE") or None, **endpoints)


def _pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sso_error(status: int, message: str) -> ClientError:
    return ClientError(status, message, kind="auth_error", param="None")


class OidcClient:
    """The code flow against one provider. What a login in progress needs on the way back
    (state, PKCE verifier, nonce) the caller keeps in the browser, signed (ui_login.py)."""

    def __init__(self, provider: Provider, http: Callable[[], aiohttp.ClientSession]):
        self.provider = provider
        self._http = http
        self._resolved: Provider | None = None
        self._keys: jwt.PyJWKSet | None = None

    async def _endpoints(self) -> Provider:
        """The provider with its discovery document read in, once."""
        if self._resolved is None:
            found = self.provider
            if found.discovery_url:
                document = await self._get_json(found.discovery_url)
                found = replace(found, **{
                    name: getattr(found, name) or document.get(name)
                    for name in ("authorization_endpoint", "token_endpoint",
                                 "userinfo_endpoint", "jwks_uri", "issuer")})
            if not found.authorization_endpoint or not found.token_endpoint:
                raise sso_error(502, f"The {found.name} identity provider's discovery document "
                                     f"names no authorization or token endpoint")
            self._resolved = found
        return self._resolved

    async def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http().get(url, timeout=TIMEOUT, **kwargs) as resp:
                if resp.status != 200:
                    raise sso_error(502, f"The identity provider answered {resp.status} "
                                         f"from {url}")
                found = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise sso_error(502, f"The identity provider could not be read at {url} "
                                 f"({type(exc).__name__})") from None
        if not isinstance(found, dict):
            raise sso_error(502, f"The identity provider's answer from {url} is not an object")
        return found

    async def authorization_url(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """Where to send the browser, and what the login must find when it comes back."""
        provider = await self._endpoints()
        state = provider.fixed_state or secrets.token_urlsafe(32)
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
        pending = {"state": state, "verifier": verifier, "nonce": nonce,
                   "redirect_uri": redirect_uri}
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": provider.client_id,
            "redirect_uri": redirect_uri, "scope": provider.scope, "state": state,
            "nonce": nonce, "code_challenge": _pkce_challenge(verifier),
            "code_challenge_method": "S256"})
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return f"{provider.authorization_endpoint}{separator}{query}", pending

    async def identity(self, code: str, pending: dict[str, Any]) -> dict[str, Any]:
        """The claims of the user the provider logged in."""
        provider = await self._endpoints()
        tokens = await self._exchange(provider, code, pending)
        claims: dict[str, Any] = {}
        if tokens.get("id_token") and provider.jwks_uri:
            claims = await self._verified(provider, tokens["id_token"], pending["nonce"])
        if provider.userinfo_endpoint and tokens.get("access_token"):
            claims |= await self._get_json(provider.userinfo_endpoint, headers={
                "Authorization": f"Bearer {tokens['access_token']}"})
        if not claims:
            raise sso_error(502, "The identity provider gave neither a verifiable id_token "
                                 "nor userinfo")
        return claims

    async def _exchange(self, provider: Provider, code: str,
                        pending: dict[str, Any]) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": pending["redirect_uri"], "code_verifier": pending["verifier"],
                "client_id": provider.client_id, "client_secret": provider.client_secret}
        try:
            async with self._http().post(provider.token_endpoint, data=form,
                                         headers={"Accept": "application/json"},
                                         timeout=TIMEOUT) as resp:
                found = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise sso_error(502, f"The identity provider's token endpoint could not be read "
                                 f"({type(exc).__name__})") from None
        if status != 200 or not isinstance(found, dict) or "error" in found:
            error = found.get("error") if isinstance(found, dict) else None
            # invalid_grant: a code used already, expired, or not issued for this verifier.
            raise sso_error(401, f"SSO login failed: the identity provider refused the "
                                 f"authorization code ({error or status})")
        return found

    async def _verified(self, provider: Provider, token: str, nonce: str) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = await self._key(provider, kid)
            # A minute's leeway: the provider's clock and the gateway's are never quite one.
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=provider.client_id,
                                issuer=provider.issuer, leeway=60, options={
                                    "verify_iss": provider.issuer is not None})
        except jwt.PyJWTError as exc:
            raise sso_error(401, f"SSO login failed: the id_token is not valid ({exc})") from None
        if not hmac_equal(claims.get("nonce"), nonce):
            raise sso_error(401, "SSO login failed: the id_token's nonce is not this login's")
        return claims

    async def _key(self, provider: Provider, kid: str | None) -> Any:
        # Keys rotate: an unknown kid reads the JWKS again, once.
        for fresh in (False, True):
            if self._keys is None or fresh:
                self._keys = jwt.PyJWKSet.from_dict(await self._get_json(provider.jwks_uri))
            keys = self._keys.keys
            for key in keys:
                if key.key_id == kid or (kid is None and len(keys) == 1):
                    return key.key
        raise jwt.InvalidTokenError(f"no key with kid={kid} in the provider's JWKS")


def hmac_equal(sent: Any, expected: str) -> bool:
    return isinstance(sent, str) and secrets.compare_digest(sent, expected)
