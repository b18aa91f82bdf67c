"""Which keys a caller who is not a proxy admin may act on, with LiteLLM's refusals.

The route gate (``Rule.OWN_KEYS``) lets internal users onto the key-writing routes; these
checks narrow that to their own keys: those whose ``user_id`` is theirs, and, for a team's
admins, the team's keys. Proxy admins pass every check; a viewer reads every key.
"""

from __future__ import annotations

from typing import Any

from ..access.roles import (
    ORG_ADMIN,
    guardrails_locked,
    is_proxy_admin,
    is_team_admin,
    is_team_member,
    reads_everything,
    role_of,
)
from ..config.settings import KeyGenerationRule
from ..errors import ClientError
from ..guardrails.call import Principal
from ..store.schema import Row, membership_id
from .budgets import all_rows, rows_where_in
from .context import Admin
from .memberships import administers_org, manages_team

GENERATE = "/key/generate"
# The key permission that opens every caller's spend logs (access/roles.py, Rule.SPEND).
SPEND_PERMISSION = "get_spend_routes"
# Who may make a team key when key_generation_settings does not say: any member.
TEAM_ROLES = ["admin", "user"]


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


async def check_generation_rules(admin: Admin, principal: Principal, team_id: str | None,
                                 given: set[str]) -> None:
    """``key_generation_settings``: who may make a team key (by their role in the team; proxy
    admins always may) or a personal one (by their user role), and the fields they must give
    (``given``: those the body names)."""
    rules = admin.settings.key_generation_settings
    rule: KeyGenerationRule | None
    if team_id is not None:
        if is_proxy_admin(principal):
            return
        rule = rules.team_key_generation if rules else None
        team = await admin.store.get_row("teams", team_id)
        if team is None:
            if rules is not None:
                raise ClientError(400, f"Unable to find team object in database. Team ID: "
                                       f"{team_id}", param="team_id")
            return
        allowed = TEAM_ROLES if rule is None or rule.allowed_team_member_roles is None \
            else rule.allowed_team_member_roles
        role = next((member.get("role") for member in team.get("members") or ()
                     if member.get("user_id") == principal.user_id), None)
        if role is not None and role not in allowed:
            raise ClientError(400, f"Team member role {role} not in allowed_team_member_roles="
                                   f"{allowed}", param="team_id")
    else:
        rule = rules.personal_key_generation if rules else None
        if rule is not None and rule.allowed_user_roles is not None \
                and role_of(principal) not in rule.allowed_user_roles:
            raise ClientError(400, f"Personal key creation has been restricted by admin. "
                                   f"Allowed roles={rule.allowed_user_roles}. Your role="
                                   f"{role_of(principal)}")
    for name in (rule.required_params or []) if rule else []:
        if name not in given:
            raise ClientError(400, f"Required param {name} not in data", param=name)


async def check_permissions(admin: Admin, principal: Principal, before: dict[str, Any] | None,
                            after: dict[str, Any] | None, team_id: str | None) -> None:
    """Refuse key ``permissions`` (``before`` -> ``after``) the caller may not give.

    ``get_spend_routes`` opens every caller's spend logs, stored prompts included: a proxy
    admin's alone to set or change. A permission set ``false`` switches a guardrail off for the
    key (``{"hide_secrets": false}``), and one that was on, taken away, may too (a key-specific
    ``enable_llm_guard_check``): a proxy admin's, or, on a team's key, the team's admin's
    unless the team's guardrails are locked. Any other change is the key owner's to make.
    """
    if is_proxy_admin(principal):
        return
    before, after = before or {}, after or {}
    changed = [name for name in {**before, **after} if before.get(name) != after.get(name)]
    if SPEND_PERMISSION in changed:
        raise ClientError(403, f"Only a proxy admin may set or change a key's permissions."
                               f"{SPEND_PERMISSION}: it opens every caller's spend logs, prompts "
                               f"included", kind="auth_error", param="permissions")
    switched_off = [name for name in changed if after.get(name) is False or before.get(name)]
    if not switched_off:
        return
    team = await admin.store.get_row("teams", team_id) if team_id is not None else None
    if team is None or guardrails_locked(team) or not await manages_team(admin, principal,
                                                                          team):
        raise ClientError(403, f"Only a proxy admin, or an admin of the key's team, may set key "
                               f"permissions that switch a guardrail off: "
                               f"{', '.join(switched_off)}", kind="auth_error",
                          param="permissions")


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
    team_id = (changes or {}).get("team_id")
    if team_id is not None and team_id != key.get("team_id") and not is_proxy_admin(principal):
        await _check_team_move(admin, principal, {**key, **(changes or {})}, team_id)


async def _check_team_move(admin: Admin, principal: Principal, key: Row, team_id: str) -> None:
    """A non-admin moves a key only into a team they administer, and only a key whose user is
    in it: the key would otherwise get a team's models and budget nobody gave it."""
    team = await admin.store.get_row("teams", team_id)
    if team is None:
        raise ClientError(400, f"Team not found for team_id={team_id}. Non-admin users cannot "
                               f"set keys to non-existent teams.", param="team_id")
    if not await manages_team(admin, principal, team):
        raise ClientError(403, f"User={principal.user_id} is not a Proxy Admin or Team Admin "
                               f"for team={team_id}. Please ask your Proxy Admin to allow this "
                               f"action under 'Member Permissions' for this team.",
                          kind="auth_error", param="team_id")
    owner = key.get("user_id")
    if owner is not None and not any(member.get("user_id") == owner
                                     for member in team.get("members") or ()):
        raise ClientError(403, f"User={owner} is not a member of the team={team_id}. Check "
                               f"team members via `/team/info`.", kind="auth_error",
                          param="team_id")


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


async def listed_user(admin: Admin, principal: Principal, asked: str | None,
                      team_id: str | None, organization_id: str | None) -> str | None:
    """The ``user_id`` ``/key/list`` is limited to, once the caller may list what they asked:
    a non-admin sees their own keys only, but an ``org_admin`` every key of their
    organization's teams, listing by the organization or by one of its teams."""
    if reads_everything(principal):
        return asked
    if principal.user_id is None:
        raise ClientError(403, "You are not authorized to access this endpoint. No 'user_id' "
                               "is associated with your API key.", kind="bad_request_error",
                          param="None")
    if asked is not None and asked != principal.user_id:
        raise ClientError(403, "You are not authorized to check another user's keys",
                          kind="bad_request_error", param="None")
    if await _org_admin_listing(admin, principal, team_id, organization_id):
        return asked
    await _check_list_scope(admin, principal, team_id, organization_id)
    return principal.user_id


async def _org_admin_listing(admin: Admin, principal: Principal, team_id: str | None,
                             organization_id: str | None) -> bool:
    # With both, /key/list keeps the keys of the team within the organization only.
    if organization_id is not None:
        return await administers_org(admin, principal, organization_id)
    if team_id is None:
        return False
    team = await admin.store.get_row("teams", team_id)
    return team is not None and team["organization_id"] is not None \
        and await administers_org(admin, principal, team["organization_id"])


async def _check_list_scope(admin: Admin, principal: Principal, team_id: str | None,
                            organization_id: str | None) -> None:
    """``/key/list`` by team or organization: a member only lists those they are in."""
    user = principal.user or {}
    if team_id is not None and team_id not in (user.get("teams") or ()):
        raise ClientError(403, "You are not authorized to check this team's keys",
                          kind="bad_request_error", param="team_id")
    if organization_id is not None and (principal.user_id is None or await admin.store.get_row(
            "organization_members", membership_id(organization_id, principal.user_id)) is None):
        raise ClientError(403, "You are not authorized to check this organization's keys",
                          kind="bad_request_error", param="organization_id")


async def administered_teams(admin: Admin, principal: Principal) -> list[str]:
    """The teams the caller manages (``/key/list?include_team_keys=true``): those they are an
    admin of, and every team of the organizations they are an ``org_admin`` of."""
    listed = list((principal.user or {}).get("teams") or ())
    teams = await admin.store.list_rows("teams", where={"team_id": listed},
                                        limit=len(listed)) if listed else []
    mine = [team["team_id"] for team in teams if is_team_admin(principal, team)]
    if principal.user_id is None:
        return mine
    orgs = {m["organization_id"] for m in await all_rows(
        admin, "organization_members", {"user_id": principal.user_id})
        if m["user_role"] == ORG_ADMIN}
    return [*mine, *(team["team_id"] for team in await rows_where_in(
        admin, "teams", "organization_id", orgs) if team["team_id"] not in mine)]
