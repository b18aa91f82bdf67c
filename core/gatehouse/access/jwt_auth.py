"""JWT auth (``enable_jwt_auth``): bearer tokens signed by an identity provider, checked
against its JWKS, become principals whose team, user and organization come from the token's
claims -- beside virtual keys and the master key.

A token is verified once and its identity kept until it expires (at most IDENTITY_TTL); its
rows are then read through the principals' caches like a key's, so a token already seen costs
no signature check and no database round trip. The JWKS is fetched with aiohttp, never on a
blocking client, kept for ``public_key_ttl`` and fetched again (at most every
REFETCH_INTERVAL) when a token names a key it does not hold: how a rotated key is learnt.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import aiohttp
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import ConfigError
from ..config.general_settings import GeneralSettings
from ..errors import ClientError
from ..guardrails.call import ModelGrant, Principal, TeamChoice
from ..store.schema import Row
from .key_routes import matches
from .principals import Principals, auth_error

log = logging.getLogger("gatehouse.auth")

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")
IDENTITY_TTL = 60.0
MAX_IDENTITIES = 50_000
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
_M = TypeVar("_M", bound=BaseModel)
# LiteLLM's route group names beyond those a key's allowed_routes knows (key_routes.py).
EXTRA_GROUPS: dict[str, tuple[str, ...]] = {
    "spend_tracking_routes": ("/spend/*", "/key/info", "/user/info", "/team/info"),
    "global_spend_tracking_routes": ("/global/spend/*",),
    # Exact paths: "/" or "/health/*" would match far more (every route; /health itself).
    "public_routes": ("/health/liveliness", "/health/liveness", "/health/readiness",
                      "/routes"),
}


class RoleMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    internal_role: Literal["proxy_admin", "team", "internal_user"]


class ScopeMapping(BaseModel):
    """What a token carrying ``scope`` may call: ``models`` (none unless listed) and, once
    any mapping lists ``routes``, only the routes its scopes list."""

    model_config = ConfigDict(extra="forbid")
    scope: str
    models: list[str] | None = None
    routes: list[str] | None = None


class RolePermission(BaseModel):
    """``general_settings.role_permissions``: the models and routes a JWT's role is held to
    (unset: not narrowed)."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["proxy_admin", "team", "internal_user"]
    models: list[str] | None = None
    routes: list[str] | None = None


class JwtSettings(BaseModel):
    """``general_settings.litellm_jwtauth``, with LiteLLM's defaults."""

    model_config = ConfigDict(extra="forbid")

    admin_jwt_scope: str = "litellm_proxy_admin"
    admin_allowed_routes: list[str] = Field(default_factory=lambda: [
        "management_routes", "spend_tracking_routes", "global_spend_tracking_routes",
        "info_routes"])
    team_id_jwt_field: str | None = None
    team_ids_jwt_field: str | None = None
    team_allowed_routes: list[str] = Field(
        default_factory=lambda: ["openai_routes", "info_routes"])
    team_id_upsert: bool = False
    team_id_default: str | None = None
    user_id_jwt_field: str | None = None
    user_email_jwt_field: str | None = None
    user_allowed_email_domain: str | None = None
    user_id_upsert: bool = False
    user_roles_jwt_field: str | None = None
    user_allowed_roles: list[str] | None = None
    org_id_jwt_field: str | None = None
    end_user_id_jwt_field: str | None = None
    public_key_ttl: float = Field(default=600.0, ge=0)
    public_allowed_routes: list[str] = Field(default_factory=lambda: ["public_routes"])
    enforce_rbac: bool = False
    roles_jwt_field: str | None = None
    role_mappings: list[RoleMapping] = Field(default_factory=list)
    object_id_jwt_field: str | None = None
    scope_mappings: list[ScopeMapping] = Field(default_factory=list)
    enforce_scope_based_access: bool = False
    # Accepted either way: a team token is always held to its team's models, and a token of
    # several teams always calls as the first allowed the model (CallGate.team_for) -- what
    # LiteLLM does with the flag on. Enforcing with it off too is the side that fails closed.
    enforce_team_based_model_access: bool = False


@dataclass(frozen=True, slots=True)
class JwtConfig:
    settings: JwtSettings
    role_permissions: dict[str, RolePermission]


def load_settings(settings: GeneralSettings, source: str) -> JwtConfig | None:
    """The JWT settings, or None without ``enable_jwt_auth``; a mistake stops the start."""
    if not settings.enable_jwt_auth:
        if settings.role_permissions:
            # Roles here are a JWT's; without JWTs the list would narrow nobody, though it
            # reads as if it narrowed the internal users of virtual keys.
            raise ConfigError.in_file(
                source, "general_settings.role_permissions: applies to JWT callers only; set "
                        "general_settings.enable_jwt_auth: true, or remove it")
        return None
    where = "general_settings.litellm_jwtauth"
    raw = settings.litellm_jwtauth
    unknown = sorted(set(raw) - set(JwtSettings.model_fields))
    if unknown:
        raise ConfigError.in_file(
            source, f"{where}: Invalid arguments provided: {', '.join(unknown)}. Allowed "
                    f"arguments are: {', '.join(JwtSettings.model_fields)}")
    jwt_settings = _validated(JwtSettings, raw, where, source)
    permissions = [_validated(RolePermission, entry, f"general_settings.role_permissions[{i}]",
                              source) for i, entry in enumerate(settings.role_permissions)]
    problems = []
    if not os.environ.get("JWT_PUBLIC_KEY_URL"):
        problems.append("general_settings.enable_jwt_auth: Missing JWT Public Key URL from "
                        "environment. Set JWT_PUBLIC_KEY_URL to the identity provider's JWKS "
                        "URL")
    if settings.master_key is None:
        problems.append("general_settings.enable_jwt_auth: needs general_settings.master_key "
                        "(teams, users and spend live in the database it enables)")
    if (jwt_settings.user_roles_jwt_field is None) != (jwt_settings.user_allowed_roles is None):
        problems.append(f"{where}: user_roles_jwt_field and user_allowed_roles must be set "
                        f"together")
    if jwt_settings.object_id_jwt_field and not jwt_settings.role_mappings:
        problems.append(f"{where}.object_id_jwt_field: requires role_mappings")
    if jwt_settings.scope_mappings and not jwt_settings.enforce_scope_based_access:
        problems.append(f"{where}.scope_mappings: requires enforce_scope_based_access: true")
    if jwt_settings.enforce_scope_based_access and not jwt_settings.scope_mappings:
        problems.append(f"{where}.enforce_scope_based_access: requires scope_mappings (the "
                        f"models each scope grants)")
    roles = [p.role for p in permissions]
    problems += [f"general_settings.role_permissions: role {role!r} is listed more than once"
                 for role in sorted({r for r in roles if roles.count(r) > 1})]
    if problems:
        raise ConfigError.in_file(source, *problems)
    return JwtConfig(jwt_settings, {p.role: p for p in permissions})


def _validated(model: type[_M], raw: Any, where: str, source: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError.in_file(source, *(
            f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg']}".replace(".: ", ": ")
            for e in exc.errors())) from None


def claim(claims: dict[str, Any], path: str | None) -> Any:
    """A claim by name, or by dot path (``resource_access.app.roles``)."""
    if path is None:
        return None
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value] if isinstance(value, list) else []


def route_allowed(route: str, entries: list[str]) -> bool:
    return any(any(matches(route, member) for member in EXTRA_GROUPS[entry])
               if entry in EXTRA_GROUPS else matches(route, entry) for entry in entries)


class Jwks:
    """The identity provider's signing keys, by ``kid``."""

    REFETCH_INTERVAL = 10.0

    def __init__(self, urls: list[str], ttl: float, session: Callable[[], aiohttp.ClientSession]):
        self.urls = urls
        self.ttl = ttl
        self._session = session
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched = -math.inf  # time.monotonic()
        self._fetching: asyncio.Future[None] | None = None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        refreshed = False
        if time.monotonic() - self._fetched >= self.ttl:
            await self._refresh()
            refreshed = True
        found = self._pick(kid)
        if found is None and not refreshed and \
                time.monotonic() - self._fetched >= self.REFETCH_INTERVAL:
            await self._refresh()
            found = self._pick(kid)
        if found is None:
            raise auth_error(f"No matching public key found. keys={','.join(self.urls)}, "
                             f"kid={kid}")
        return found

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        # Concurrent calls that find the keys lapsed share one fetch.
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
            self._fetching.add_done_callback(lambda _: setattr(self, "_fetching", None))
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        keys: dict[str | None, jwt.PyJWK] = {}
        try:
            for url in self.urls:
                for found in (await self._key_set(url)).keys:
                    keys[found.key_id] = found
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning("cannot fetch the JWKS from %s: %s", ", ".join(self.urls), exc)
            if self._keys:
                # The keys held stay in use; the fetch is tried again after REFETCH_INTERVAL,
                # not on every call while the provider is down.
                self._fetched = time.monotonic() - max(0.0, self.ttl - self.REFETCH_INTERVAL)
                return
            raise ClientError(503, "Authentication service unavailable: the JWT public keys "
                                   "cannot be fetched", kind="service_unavailable") from None
        self._keys = keys
        self._fetched = time.monotonic()

    async def _key_set(self, url: str) -> jwt.PyJWKSet:
        document = await self._get_json(url)
        if "keys" not in document and isinstance(document.get("jwks_uri"), str):
            # An OIDC discovery document names its JWKS.
            document = await self._get_json(document["jwks_uri"])
        return jwt.PyJWKSet.from_dict(document)

    async def _get_json(self, url: str) -> dict[str, Any]:
        async with self._session().get(url, timeout=FETCH_TIMEOUT) as resp:
            resp.raise_for_status()
            document = await resp.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document


@dataclass(frozen=True, slots=True)
class Identity:
    """What a verified token says about its caller."""

    role: str | None  # proxy_admin | team | internal_user
    team_id: str | None
    # The teams of team_ids_jwt_field when it names several (team_id is the first): a model
    # call goes to the first of them allowed its model. Empty: team_id is the only one.
    team_ids: tuple[str, ...]
    user_id: str | None
    user_email: str | None
    org_id: str | None
    end_user_id: str | None
    # The models its role and scopes are held to.
    grants: tuple[ModelGrant, ...]
    # The routes its scopes allow; None: not narrowed (no scope mapping lists routes).
    scope_routes: tuple[str, ...] | None
    expires: float  # time.monotonic()


class JwtAuth:
    def __init__(self, config: JwtConfig, principals: Principals,
                 session: Callable[[], aiohttp.ClientSession]):
        settings = self.settings = config.settings
        self.principals = principals
        urls = [u.strip() for u in os.environ["JWT_PUBLIC_KEY_URL"].split(",") if u.strip()]
        self.jwks = Jwks(urls, settings.public_key_ttl, session)
        self.audience = os.environ.get("JWT_AUDIENCE") or None
        if self.audience is None:
            # Accepted as LiteLLM accepts them, but the operator should know.
            log.warning("JWT_AUDIENCE is not set: tokens the identity provider issued for any "
                        "of its applications are accepted; set it to this gateway's audience "
                        "(client id) so only tokens meant for it pass")
        self.issuer = os.environ.get("JWT_ISSUER") or None
        self.role_routes = {role: p.routes for role, p in config.role_permissions.items()
                            if p.routes is not None}
        self.role_grants = {
            role: ModelGrant(tuple(p.models), f"Role={role} not allowed to call "
                                              f"model={{model}}. Allowed models={p.models}")
            for role, p in config.role_permissions.items() if p.models is not None}
        self.scope_routes = any(m.routes is not None for m in settings.scope_mappings)
        self._identities: dict[str, Identity] = {}

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2

    async def authenticate(self, token: str, route: str) -> Principal:
        identity = self._identities.get(token)
        if identity is None or identity.expires <= time.monotonic():
            identity = await self._verify(token)
        return await self._principal(identity, route)

    async def _verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise auth_error(f"Validation fails: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise auth_error(f"Validation fails: algorithm {algorithm!r} is not allowed")
        key = await self.jwks.key(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[algorithm], audience=self.audience,
                issuer=self.issuer, leeway=0,
                options={"verify_aud": self.audience is not None, "require": ["exp"]})
        except jwt.ExpiredSignatureError:
            raise ClientError(401, "Authentication Error, Token Expired",
                              kind="expired_key", param="None") from None
        except jwt.PyJWTError as exc:
            raise auth_error(f"Validation fails: {exc}") from None
        identity = self._identity(claims)
        if len(self._identities) >= MAX_IDENTITIES:
            del self._identities[next(iter(self._identities))]
        self._identities[token] = identity
        return identity

    def _identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        scopes = _as_list(claims.get("scope"))
        roles = _as_list(claim(claims, s.roles_jwt_field))
        # The first mapping in the file's order that the token's roles match, as LiteLLM.
        mapped = next((m.internal_role for m in s.role_mappings if m.role in roles), None)
        team_id = id_claim(claims, s.team_id_jwt_field)
        team_ids: tuple[str, ...] = ()
        if team_id is None:
            team_ids = tuple(dict.fromkeys(_as_list(claim(claims, s.team_ids_jwt_field))))
            team_id = next(iter(team_ids), None)
        team_id = team_id if team_id is not None else s.team_id_default
        user_id = id_claim(claims, s.user_id_jwt_field)
        email = id_claim(claims, s.user_email_jwt_field)
        if s.user_roles_jwt_field is not None and not set(
                _as_list(claim(claims, s.user_roles_jwt_field))) & set(s.user_allowed_roles or ()):
            raise ClientError(403, f"Authentication Error - User's roles are not in allowed "
                                   f"roles={s.user_allowed_roles}", kind="auth_error",
                              param="None")
        # A role mapping is the operator's word on what a token is, so it comes before what
        # incidental claims (a `sub` every token carries) suggest.
        role: str | None
        if s.admin_jwt_scope in scopes or mapped == "proxy_admin":
            role = "proxy_admin"
        elif mapped is not None:
            role = mapped
        elif team_id is not None:
            role = "team"
        elif user_id is not None or s.user_roles_jwt_field is not None:
            # Past the check above, a token with user_roles_jwt_field holds an allowed role.
            role = "internal_user"
        else:
            role = None
        # The object id (Azure AD's `oid`) is the team's or the user's id, as the role says.
        object_id = id_claim(claims, s.object_id_jwt_field)
        if object_id is not None and role == "team":
            team_id, team_ids = object_id, ()
        elif object_id is not None and role == "internal_user":
            user_id = object_id
        if s.user_allowed_email_domain and (user_id is not None or email is not None) and \
                not _in_domain(email, s.user_allowed_email_domain):
            # A user without an email is refused too, as in LiteLLM: never made a user.
            raise ClientError(403, f"Authentication Error - User's email domain={email}, not "
                                   f"in allowed domain={s.user_allowed_email_domain}",
                              kind="auth_error", param="None")
        exp = claims.get("exp")
        left = IDENTITY_TTL if not isinstance(exp, (int, float)) else min(
            IDENTITY_TTL, exp - time.time())
        return Identity(role, team_id, team_ids if len(team_ids) > 1 else (), user_id, email,
                        id_claim(claims, s.org_id_jwt_field),
                        id_claim(claims, s.end_user_id_jwt_field), self._grants(role, scopes),
                        self._scope_routes(scopes), time.monotonic() + left)

    def _grants(self, role: str | None, scopes: list[str]) -> tuple[ModelGrant, ...]:
        grants = [self.role_grants[role]] if role in self.role_grants else []
        if self.settings.scope_mappings:
            models = list(dict.fromkeys(model for m in self.settings.scope_mappings
                                        if m.scope in scopes for model in m.models or ()))
            grants.append(ModelGrant(tuple(models), f"model={{model}} not allowed. "
                                                    f"Allowed_models={models}"))
        return tuple(grants)

    def _scope_routes(self, scopes: list[str]) -> tuple[str, ...] | None:
        if not self.scope_routes:
            return None
        return tuple(dict.fromkeys(route for m in self.settings.scope_mappings
                                   if m.scope in scopes for route in m.routes or ()))

    async def _principal(self, identity: Identity, route: str) -> Principal:
        s = self.settings
        if identity.role is None or (identity.role == "team" and identity.team_id is None):
            if s.enforce_rbac and identity.role is None:
                raise ClientError(403, "Unmatched token passed in. enforce_rbac is set to True. "
                                       "Token must belong to a proxy admin, team, or user.",
                                  kind="auth_error", param="None")
            if identity.role is None and route_allowed(route, s.public_allowed_routes):
                # A valid token of no known role: the public routes, as nobody in particular.
                return Principal(model_grants=identity.grants)
            field = s.object_id_jwt_field if identity.role == "team" and \
                s.object_id_jwt_field else s.team_id_jwt_field or s.team_ids_jwt_field
            raise auth_error(f"No team id passed in. Field checked in jwt token - '{field}'")
        # Unlike LiteLLM, role_permissions hold without enforce_rbac too: the file lists
        # them to narrow the role, and ignoring them would let it call more than it says.
        allowed = self.role_routes.get(identity.role)
        if allowed is not None and not route_allowed(route, allowed):
            raise ClientError(403, f"Role={identity.role} not allowed to call route={route}. "
                                   f"Allowed routes={allowed}", kind="auth_error", param="None")
        if identity.scope_routes is not None and \
                not route_allowed(route, list(identity.scope_routes)):
            raise ClientError(403, f"route={route} not allowed. Allowed_routes="
                                   f"{list(identity.scope_routes)}", kind="auth_error",
                              param="None")
        if identity.role == "proxy_admin":
            if not route_allowed(route, s.admin_allowed_routes):
                raise auth_error(f"Admin not allowed to access this route. Route={route}, "
                                 f"Allowed Routes={s.admin_allowed_routes}")
            return Principal(is_admin=True, user_id=identity.user_id,
                             team_id=identity.team_id, model_grants=identity.grants)
        team = None
        if identity.team_id is not None:
            if not route_allowed(route, s.team_allowed_routes):
                raise auth_error(f"Team not allowed to access this route. Route={route}, "
                                 f"Allowed Routes={s.team_allowed_routes}")
            team = await self._row("team", identity.team_id, s.team_id_upsert, {
                "team_id": identity.team_id, "members": []})
            if team is None and identity.team_ids:
                async for member in self.teams_of(identity):
                    return replace(member, team_choice=identity)
            if team is None:
                raise auth_error(f"Team doesn't exist in db. Team={identity.team_id}. Create "
                                 f"team via `/team/new` call.")
        return await self._as_member(identity, team,
                                     identity if identity.team_ids else None)

    async def teams_of(self, identity: TeamChoice) -> AsyncIterator[Principal]:
        """The caller of a token naming several teams as each of them the gateway knows, in
        the token's order (LiteLLM passes over a team it cannot find)."""
        if not isinstance(identity, Identity):
            return
        for team_id in identity.team_ids:
            team = await self.principals.record("team", team_id)
            if team is not None:
                yield await self._as_member(replace(identity, team_id=team_id), team, None)

    async def _as_member(self, identity: Identity, team: Row | None,
                         choice: Identity | None) -> Principal:
        """The caller ``identity`` names, calling as a member of ``team``."""
        user = organization = None
        if identity.user_id is not None:
            user = await self._row("user", identity.user_id, self.settings.user_id_upsert, {
                "user_id": identity.user_id, "user_email": identity.user_email,
                "user_role": "internal_user"})
        org_id = identity.org_id or (team or {}).get("organization_id")
        if org_id is not None:
            organization = await self.principals.record("organization", org_id)
        return Principal(
            team_id=identity.team_id, user_id=identity.user_id, team=team, user=user,
            organization=organization,
            organization_budget=await self.principals.budget_of(organization),
            end_user_id=identity.end_user_id, model_grants=identity.grants,
            team_choice=choice)

    async def _row(self, kind: str, ident: str, upsert: bool, new: Row) -> Row | None:
        row = await self.principals.record(kind, ident)
        if row is None and upsert:
            now = time.time()
            store = self.principals.store
            try:
                await store.insert_row(f"{kind}s", {**new, "created_at": now,
                                                     "updated_at": now})
            except Exception as exc:  # noqa: BLE001 - another gateway made it first
                log.debug("upsert of %s %s: %s", kind, ident, exc)
            await self.principals.forget(kind, ident)
            row = await self.principals.record(kind, ident)
        return row


def _in_domain(email: str | None, domain: str) -> bool:
    """``email`` is an address at ``domain``; domains are compared regardless of case."""
    local, at, host = (email or "").rpartition("@")
    return bool(local and at) and host.casefold() == domain.casefold()


def id_claim(claims: dict[str, Any], path: str | None) -> str | None:
    """An id (or email) claim: a string, or a whole number taken as one. Absent or empty,
    None; any other type is the identity provider's mistake and refuses the token rather
    than naming a team or user no one meant."""
    value = claim(claims, path)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise auth_error(f"Validation fails: claim '{path}' must be a string, not "
                     f"{type(value).__name__}")
