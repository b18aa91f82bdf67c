"""Which keys a caller who is not a proxy admin may act on, with LiteLLM's refusals.

The route gate (``Rule.OWN_KEYS``) lets internal users onto the key-writing routes; these
checks narrow that to their own keys: those whose ``user_id`` is theirs, and, for a team's
admins, the team's keys. Proxy admins pass every check; a viewer reads every key.
"""

from __future__ import annotations

from typing import Any

from ..access.roles import is_proxy_admin, is_team_member, reads_everything
from ..errors import ClientError
from ..guardrails.call import Principal
from ..store.database import Row
from .context import Admin
from .memberships import manages_team

GENERATE = "/key/generate"


def not_for_yourself(owner: str | None, principal: Principal) -> ClientError:
    return ClientError(403, f"User can only create keys for themselves. Got user_id={owner}, "
                            f"Your ID={principal.user_id}", kind="auth_error", param="None")


async def check_new_key(admin: Admin, principal: Principal, user_id: str | None,
                        team_id: str | None) -> str | None:
    """The ``user_id`` a new key gets: a non-admin makes keys for themselves only (an omitted
    ``user_id`` is theirs), and a team key only in a team they are in, as a team admin or
    with ``/key/generate`` in the team's ``team_member_permissions``."""
    if is_proxy_admin(principal):
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise not_for_yourself(user_id, principal)
    if team_id is not None:
        team = await admin.store.get_row("teams", team_id)
        manager = team is not None and await manages_team(admin, principal, team)
        if team is None or not (manager or is_team_member(principal, team)):
            raise ClientError(400, f"User={principal.user_id} not assigned to team={team_id}",
                              param="team_id")
        if not manager and \
                GENERATE not in (team.get("team_member_permissions") or ()):
            raise ClientError(401, f"Team member does not have permissions for endpoint: "
                                   f"{GENERATE}. You only have access to "
                                   f"{team.get('team_member_permissions') or []}",
                              kind="team_member_permission_error", param=GENERATE)
    return principal.user_id


async def owns(admin: Admin, principal: Principal, key: Row) -> bool:
    """The caller may change ``key``: a proxy admin, the key's user, or an admin of its team
    or of the team's organization."""
    if is_proxy_admin(principal):
        return True
    if principal.user_id is not None and key.get("user_id") == principal.user_id:
        return True
    team = await admin.store.get_row("teams", key["team_id"]) if key.get("team_id") else None
    return team is not None and await manages_team(admin, principal, team)


async def check_owner(admin: Admin, principal: Principal, key: Row,
                      changes: dict[str, Any] | None = None) -> None:
    """Refuse a change to a key the caller does not own, or one that gives it to someone
    else."""
    if not await owns(admin, principal, key):
        raise not_for_yourself(key.get("user_id"), principal)
    if changes and "user_id" in changes and changes["user_id"] != key.get("user_id") \
            and not is_proxy_admin(principal):
        raise ClientError(403, f"User={changes['user_id']} is not allowed to update key="
                               f"{key['key_name']} to belong to user={key.get('user_id')}",
                          kind="auth_error", param="None")


async def may_read(admin: Admin, principal: Principal, key: Row) -> bool:
    """``/key/info`` of another key: the same user's, or one of a team the caller is in."""
    if reads_everything(principal) or key["key_hash"] == principal.key_hash:
        return True
    if principal.user_id is not None and key.get("user_id") == principal.user_id:
        return True
    if not key.get("team_id"):
        return False
    team = await admin.store.get_row("teams", key["team_id"])
    return team is not None and is_team_member(principal, team)


def listed_user(principal: Principal, asked: str | None) -> str | None:
    """The ``user_id`` ``/key/list`` is limited to: a non-admin sees their own keys only."""
    if reads_everything(principal):
        return asked
    if principal.user_id is None:
        raise ClientError(403, "You are not authorized to access this endpoint. No 'user_id' "
                               "is associated with your API key.", kind="bad_request_error",
                          param="None")
    if asked is not None and asked != principal.user_id:
        raise ClientError(403, "You are not authorized to check another user's keys",
                          kind="bad_request_error", param="None")
    return principal.user_id
