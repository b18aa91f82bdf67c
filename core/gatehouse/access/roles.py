"""Roles, as LiteLLM names them: what a caller is on the admin API, and which routes a role may
call.

A key's role is its user's ``user_role``; the master key is ``proxy_admin``. A key without a
user row has no role (``unknown``): it may still call the LLM routes, read what is its own and
use the routes that check the caller themselves (team members, as a team admin).
"""

from __future__ import annotations

import enum
from typing import Any

from ..errors import ClientError
from ..guardrails.call import Principal

PROXY_ADMIN = "proxy_admin"
PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
INTERNAL_USER = "internal_user"
INTERNAL_USER_VIEWER = "internal_user_viewer"
USER_ROLES = (PROXY_ADMIN, PROXY_ADMIN_VIEWER, INTERNAL_USER, INTERNAL_USER_VIEWER)
ORG_ADMIN = "org_admin"
ORG_ROLES = (ORG_ADMIN, INTERNAL_USER, INTERNAL_USER_VIEWER)
NO_ROLE = "unknown"


class Rule(enum.Enum):
    """Who passes a route's gate; routes other than ADMIN narrow further themselves."""

    ADMIN = "proxy admins"
    ADMIN_READ = "proxy admins and their viewers"
    SELF = "any key, for what is its own"
    OWN_KEYS = "proxy admins and internal users, on their own keys"
    MEMBERS = "proxy admins and team or organization admins"
    SPEND = "proxy admins, their viewers and keys with permissions.get_spend_routes"
    MASTER_KEY = "the master key alone"


def role_of(principal: Principal) -> str:
    if principal.is_admin:
        return PROXY_ADMIN
    if principal.user is None:
        return NO_ROLE
    role = principal.user.get("user_role")
    # A user row without a role, or with one this version does not know, is an internal user.
    return role if role in USER_ROLES else INTERNAL_USER


def is_proxy_admin(principal: Principal) -> bool:
    return role_of(principal) == PROXY_ADMIN


def reads_everything(principal: Principal) -> bool:
    """A proxy admin or their viewer: every key, team, user and end user is theirs to read."""
    return role_of(principal) in (PROXY_ADMIN, PROXY_ADMIN_VIEWER)


def mask(user_id: str | None) -> str:
    """A user id as errors show it: enough to recognise, not to copy."""
    if user_id is None:
        return "None"
    if len(user_id) <= 4:
        return "***"
    if len(user_id) <= 8:
        return f"{user_id[0]}***{user_id[-1]}"
    return f"{user_id[:6]}{'*' * (len(user_id) - 8)}{user_id[-2:]}"


def check_route(principal: Principal, rule: Rule, route: str) -> None:
    """Refuse a caller whose role the route's rule does not let in, with LiteLLM's words."""
    if rule is Rule.MASTER_KEY:
        if not principal.is_admin:
            raise ClientError(401, f"Authentication Error, Tried to access route={route}, "
                                   f"which is only for MASTER KEY", kind="auth_error",
                              param="None")
        return
    role = role_of(principal)
    if role == PROXY_ADMIN or rule is Rule.SELF or (
            rule is Rule.SPEND and principal.permissions.get("get_spend_routes") is True):
        return
    if role == PROXY_ADMIN_VIEWER:
        if rule in (Rule.ADMIN_READ, Rule.SPEND):
            return
        raise ClientError(403, f"user not allowed to access this route, role= {role}. "
                               f"Trying to access: {route}", kind="auth_error", param="None")
    if rule is Rule.MEMBERS or (rule is Rule.OWN_KEYS and role == INTERNAL_USER):
        return
    raise not_admin(principal, route)


def not_admin(principal: Principal, route: str) -> ClientError:
    return ClientError(
        401, f"Authentication Error, Only proxy admin can be used to generate, delete, update "
             f"info for new keys/users/teams. Route={route}. Your role={role_of(principal)}. "
             f"Your user_id={mask(principal.user_id)}", kind="auth_error", param="None")


def check_llm_route(principal: Principal) -> None:
    """A viewer may read everything but call no model."""
    if role_of(principal) == PROXY_ADMIN_VIEWER:
        raise ClientError(403, f"user not allowed to access this OpenAI routes, role= "
                               f"{PROXY_ADMIN_VIEWER}", kind="auth_error", param="None")


def is_team_admin(principal: Principal, team: dict[str, Any]) -> bool:
    return principal.user_id is not None and any(
        member.get("user_id") == principal.user_id and member.get("role") == "admin"
        for member in team.get("members") or ())


def guardrails_locked(team: dict[str, Any] | None) -> bool:
    """The team's ``metadata.guardrails`` is, as in LiteLLM, ``{"modify_guardrails": false}``:
    its keys may not change which guardrails run."""
    lock = ((team or {}).get("metadata") or {}).get("guardrails")
    return isinstance(lock, dict) and lock.get("modify_guardrails") is False


def is_team_member(principal: Principal, team: dict[str, Any]) -> bool:
    return principal.team_id == team["team_id"] or (principal.user_id is not None and any(
        member.get("user_id") == principal.user_id for member in team.get("members") or ()))
