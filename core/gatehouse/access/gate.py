"""Checks a call must pass before any guardrail runs: the client's address, required params,
and (CallGate) budgets, the models of the key, its team, its user and the team's organization,
the key's expiry and routes, a blocked team, the team's guardrail lock, the caller's role, rate
limits and blocked end users, in LiteLLM's order."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..config import ConfigError
from ..errors import ClientError
from ..guardrails.base import GuardrailBlocked
from .key_routes import check_route
from .limits import NONE, Limits, Scope, end_user_limits
from ..guardrails.call import end_user_of
from .model_access import ModelAccess, team_aliases
from .principals import check_expiry, check_team_blocked
from .roles import check_llm_route

if TYPE_CHECKING:
    from ..config.general_settings import GeneralSettings
    from ..guardrails.call import Call, Principal
    from .accounting import Accounting
    from .principals import Principals

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCK_MESSAGE = "Your team does not have permission to modify guardrails."
# Where the key's per-model budgets are checked among its budgets.
MODEL_BUDGET = Scope("model_max_budget", 0.0, None)


class IpAllowList:
    """Which address a call comes from, and whether ``allowed_ips`` lets it in."""

    def __init__(self, settings: GeneralSettings, source: str):
        problems: list[str] = []
        self.networks = None if settings.allowed_ips is None else _networks(
            settings.allowed_ips, "allowed_ips", problems)
        self.proxies = _networks(settings.trusted_proxies, "trusted_proxies", problems)
        self.header = settings.trusted_proxy_header or (
            "X-Forwarded-For" if settings.use_x_forwarded_for else None)
        if self.header is not None and not settings.trusted_proxies:
            # Refused rather than ignored: believing nobody would quietly give every client
            # the proxy's address, so allowed_ips would let all in or keep all out, and the
            # spend log would name the proxy -- found in an outage, or never.
            which = "trusted_proxy_header" if settings.trusted_proxy_header \
                else "use_x_forwarded_for"
            problems.append(
                f"general_settings.{which}: set general_settings.trusted_proxies to the "
                f"addresses of your reverse proxies as well; without it any client could "
                f"claim any address by sending {self.header}")
        if problems:
            raise ConfigError.in_file(source, *problems)

    def client_ip(self, request: web.Request) -> str | None:
        peer = request.remote
        if self.header is None or not self._is_proxy(peer):
            return peer
        hops = [hop.strip() for value in request.headers.getall(self.header, ())
                for hop in value.split(",")]
        # Each proxy appends the address it saw; only those our proxies wrote can be believed,
        # so the client is the right-most address not written about one of them.
        for hop in reversed(hops):
            if not self._is_proxy(hop):
                return hop
        return hops[0] if hops else peer

    def _is_proxy(self, ip: str | None) -> bool:
        address = _address(ip)
        return address is not None and any(address in net for net in self.proxies)

    def check(self, ip: str | None) -> None:
        if self.networks is None:
            return
        address = _address(ip)
        if address is None or not any(address in net for net in self.networks):
            raise ClientError(403, f"Access forbidden: IP address {ip} not allowed.",
                              kind="auth_error")


def _networks(entries: list[str], field: str, problems: list[str]) -> list[Network]:
    networks = []
    for i, entry in enumerate(entries):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            problems.append(f"general_settings.{field}[{i}]: {exc}")
    return networks


def _address(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return None
    # A dual-stack listener, or a proxy, may write an IPv4 client as ::ffff:a.b.c.d; the
    # configured IPv4 networks must still match it.
    return getattr(address, "ipv4_mapped", None) or address


def check_enforced_params(params: list[str], body: dict[str, Any]) -> None:
    for param in params:
        value: Any = body
        for part in param.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            shown = param if "." not in param else "".join(f"[{p}]" for p in param.split("."))
            raise ClientError(
                401, f"Authentication Error, BadRequest please pass param={shown} in request "
                     f"body. This is a required param", kind="auth_error", param="None")


class CallGate:
    """What a caller must pass before any guardrail runs, in LiteLLM's order (management API
    §11.1): the end user's budget; the key's models; the membership's budget, the key's expiry,
    budget and per-model budgets; the team not blocked; the team's, user's and organization's
    models and budgets; the team's guardrail lock; a role that may call models; the key's
    routes; rate limits; blocked users; a parallel-call slot."""

    def __init__(self, principals: Principals, accounting: Accounting,
                 models: ModelAccess | None = None):
        self.principals = principals
        self.accounting = accounting
        # The served models' access groups, kept current by the router.
        self.models = models or ModelAccess()

    async def check(self, call: Call, requested_guardrails: Any, route: str = "") -> None:
        """``route``: the path called, for the key's ``allowed_routes``."""
        principal = call.principal
        principals, accounting = self.principals, self.accounting
        accounting.check_backlog()
        # A JWT's role and scopes are checked as it is authenticated in LiteLLM: first.
        self.models.check_grants(principal, call.model)
        end_user_budget = end_user_rate = None
        if call.user is not None and principals.enabled:
            call.end_user = await principals.end_user(call.user)
            call.end_user_budget = await principals.budget_of(call.end_user)
            end_user_budget, end_user_rate = end_user_limits(call)
        limits = accounting.limits_of(principal)
        steps: list[Scope | None] = [end_user_budget]
        # NONE: a caller with no key, team, user or organization (master key, no keys at all).
        refusal = self._key_checks(call, limits, steps) if limits is not NONE else None
        budgets = [step for step in steps if step is not None and step is not MODEL_BUDGET]
        estimate = accounting.estimate(call) if budgets else 0.0
        spent = iter(await accounting.hold(call, budgets, estimate))
        try:
            for step in steps:
                if step is MODEL_BUDGET:
                    await accounting.check_model_budget(call, limits)
                elif step is not None:
                    step.check(next(spent))
            if refusal is not None:
                raise refusal
        except ClientError:
            await accounting.give_back(call)
            raise
        if principal.team_locked and (requested_guardrails or call.metadata.get("guardrails")):
            raise ClientError(403, LOCK_MESSAGE, kind="auth_error", param="None")
        check_llm_route(principal)
        if principal.key is not None:
            check_route(principal.key, route)
        await accounting.check_rates(call, limits, end_user_rate)
        # The key's owner and the end user the body names are both checked: naming another
        # user must not get a blocked key's owner through.
        for user in (principal.user_id, call.user):
            if user is not None and await self._blocked(user, call):
                raise GuardrailBlocked(f"User blocked from making LLM API Calls. User={user}")
        await accounting.take_slot(call, limits)

    async def team_for(self, principal: Principal, model: str,
                       serves: Callable[[Principal, str], bool]) -> Principal:
        """The caller of ``model``: a JWT naming several teams calls as the first of them
        allowed the model (LiteLLM's rule) -- one whose models list lets it and that
        ``serves(team's principal, model)``, so another team's private model does not pick a
        team it is hidden from -- failing that the first whose list lets it (the call then
        fails as that team's would); none: 403. Any other caller is itself."""
        choice = principal.team_choice
        if choice is None:
            return principal
        listed = None
        async for member in self.principals.jwt.teams_of(choice):
            allowed = (member.team or {}).get("models") or ()
            if allowed and not self.models.allows(allowed, model, team_aliases(member)):
                continue
            if serves(member, model):
                return member
            listed = listed or member
        if listed is not None:
            return listed
        raise ClientError(403, f"No team has access to the requested model: {model}. Checked "
                               f"teams={list(choice.team_ids)}. Check `/models` "
                               f"to see all available models.", kind="auth_error", param="None")

    async def admit(self, call: Call) -> None:
        """The checks of :meth:`check` that do not depend on a model, for a call that names
        none (a pass-through endpoint): the caller's budgets, rate limits and a parallel-call
        slot (given back by ``accounting.release``)."""
        accounting = self.accounting
        limits = accounting.limits_of(call.principal)
        budgets = [scope for scope in (limits.member_budget, limits.key_budget,
                                       *limits.upper_budgets) if scope is not None]
        spent = await accounting.hold(call, budgets,
                                      accounting.estimate(call) if budgets else 0.0)
        try:
            for scope, before in zip(budgets, spent):
                scope.check(before)
        except ClientError:
            await accounting.give_back(call)
            raise
        await accounting.check_rates(call, limits, None)
        await accounting.take_slot(call, limits)

    def _key_checks(self, call: Call, limits: Limits,
                    steps: list[Scope | None]) -> ClientError | None:
        """The key's checks that need no counters, run until the first that fails, which is
        returned; ``steps`` gets the budgets ordered before it. All the budgets are then held
        in one step, and the first refusal in order is the call's."""
        principal = call.principal
        try:
            self.models.check_scopes(principal, limits.key_models, call.model)
            steps.append(limits.member_budget)
            check_expiry(principal, time.time())
            steps.append(limits.key_budget)
            if limits.per_model:
                steps.append(MODEL_BUDGET)
            check_team_blocked(principal)
            self.models.check_scopes(principal, limits.other_models, call.model)
            steps.extend(limits.upper_budgets)
        except ClientError as refused:
            return refused
        return None

    async def fill_default_model(self, body: dict[str, Any], header_user: str | None,
                                 principal: Principal) -> None:
        """A call that names no model goes to its end user's ``default_model``, if they have
        one (the end user is read as :attr:`Call.user` reads it)."""
        if not self.principals.enabled:
            return
        metadata = body.get("metadata")
        user = principal.end_user_id or end_user_of(
            header_user, body, metadata if isinstance(metadata, dict) else {})
        row = await self.principals.end_user(user) if user is not None else None
        if row is not None and row.get("default_model"):
            body["model"] = row["default_model"]

    async def _blocked(self, user: str, call: Call) -> bool:
        principals = self.principals
        if user in principals.config_blocked:
            return True
        if not principals.enabled:
            return False
        row = call.end_user if user == call.user else await principals.end_user(user)
        return row is not None and row["blocked"]
