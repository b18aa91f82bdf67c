"""Checks a call must pass before any guardrail runs: the client's address, required params,
blocked users, the key's models, the team's guardrail lock, budgets and rate limits."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..errors import ClientError
from ..guardrails.base import GuardrailBlocked

if TYPE_CHECKING:
    from ..config import GeneralSettings
    from ..guardrails.call import Call
    from .accounting import Accounting
    from .principals import Principals

LOCK_MESSAGE = "Your team does not have permission to modify guardrails."


class IpAllowList:
    def __init__(self, settings: GeneralSettings):
        self.networks = None if settings.allowed_ips is None else [
            ipaddress.ip_network(entry, strict=False) for entry in settings.allowed_ips]
        header = settings.trusted_proxy_header or (
            "X-Forwarded-For" if settings.use_x_forwarded_for else None)
        self.header = header

    def client_ip(self, request: web.Request) -> str | None:
        if self.header is not None:
            forwarded = request.headers.get(self.header)
            if forwarded:
                # The left-most address is the client as the trusted proxy saw it.
                return forwarded.split(",")[0].strip()
        return request.remote

    def check(self, ip: str | None) -> None:
        if self.networks is None:
            return
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in self.networks):
            raise ClientError(403, f"Access forbidden: IP address {ip} not allowed.",
                              kind="auth_error")


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
    """What a caller must pass before any guardrail runs: not blocked, allowed the model, not
    changing a locked team's guardrails, within budget and rate limits."""

    def __init__(self, principals: Principals, accounting: Accounting):
        self.principals = principals
        self.accounting = accounting

    async def check(self, call: Call, requested_guardrails: Any) -> None:
        principal = call.principal
        # The key's owner and the end user the body names are both checked: naming another
        # user must not get a blocked key's owner through.
        named = [user for user in (principal.user_id, call.user) if user is not None]
        if named:
            blocked = await self.principals.blocked_users()
            for user in named:
                if user in blocked:
                    raise GuardrailBlocked(
                        f"User blocked from making LLM API Calls. User={user}")
        allowed = principal.models
        if allowed and call.model not in allowed:
            raise ClientError(401, f"Authentication Error - key not allowed to access model. "
                                   f"This key can only access models={list(allowed)}. "
                                   f"Tried to access {call.model}", kind="auth_error")
        if principal.team_locked and (requested_guardrails or call.metadata.get("guardrails")):
            raise ClientError(403, LOCK_MESSAGE, kind="auth_error", param="None")
        await self.accounting.admit(call)
