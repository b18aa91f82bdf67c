"""Virtual keys: ``/key/generate``, ``/key/update``, ``/key/info``, ``/key/list``,
``/key/delete``, ``/key/regenerate``, ``/key/block``, ``/key/unblock``, ``/key/health``,
``/key/service-account/generate``, with LiteLLM's fields, defaults and response bodies.

The bodies they take are in ``key_bodies``, how a key is shown in ``key_views``, and how a
request's fields become the key's columns in ``key_columns``.
"""

from __future__ import annotations

import math
import re
import time

from aiohttp import web

from ..access.credentials import KEY_PREFIX, hash_key, key_name, new_key
from ..access.limits import spend_counter
from ..access.roles import Rule, reads_everything, role_of
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..proxy.schemas import refuse_nul
from ..store.schema import Row
from .bodies import parse_body, parse_query, reply
from .context import Admin, admin_route, check_email, gated
from .key_bodies import (SORT_COLUMNS, DeleteKeys, GenerateKey, KeyFields, KeyInfo,
                         KeyInfoQuery, KeyList, KeyListQuery, KeyRef, RegenerateKey, UpdateKey)
from .key_columns import (apply_config_bounds, check_alias, check_chosen_key, check_throughput,
                          soft_budget_row, stored_columns)
from .key_owners import (
    administered_teams,
    check_generation_rules,
    check_new_key,
    check_owner,
    SPEND_PERMISSION,
    check_permissions,
    listed_user,
    may_read,
    owns,
)
from .key_views import KEYS, key_ident, shown_key
from .tables import actor

HASH = re.compile(r"[0-9a-f]{64}")
# An organization's teams read to list its keys.
ORG_TEAMS_READ = 10_000


def setup(app: web.Application) -> None:
    app.router.add_post("/key/generate", generate)
    app.router.add_post("/key/service-account/generate", generate_service_account)
    app.router.add_post("/key/update", update)
    app.router.add_get("/key/info", info)
    app.router.add_post("/key/delete", delete)
    app.router.add_get("/key/list", list_keys)
    app.router.add_post("/key/regenerate", regenerate)
    app.router.add_post("/key/{key}/regenerate", regenerate)
    app.router.add_post("/key/block", block)
    app.router.add_post("/key/unblock", unblock)
    app.router.add_post("/key/health", health)


# --- making keys ---------------------------------------------------------------------------------

@gated(Rule.OWN_KEYS)
async def generate(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, GenerateKey)
    await check_generation_rules(admin, request[PRINCIPAL], body.team_id,
                                 body.model_fields_set)
    body.user_id = await check_new_key(admin, request[PRINCIPAL], body.user_id, body.team_id)
    await check_permissions(admin, request[PRINCIPAL], {}, body.permissions, body.team_id)
    return await _generate(request, admin, body)


@admin_route
async def generate_service_account(request: web.Request, admin: Admin) -> web.Response:
    """A key owned by a team rather than a person: ``team_id`` must name a team."""
    body = await parse_body(request, GenerateKey)
    if body.team_id is None:
        raise ClientError(400, "team_id is required for service account keys. Please specify "
                               "`team_id` in the request body.", param="team_id")
    if await admin.store.get_row("teams", body.team_id) is None:
        raise ClientError(400, "team_id does not exist in the database. Please specify a valid "
                               "`team_id` in the request body.", param="team_id")
    body.user_id = None
    return await _generate(request, admin, body)


async def _generate(request: web.Request, admin: Admin, body: GenerateKey) -> web.Response:
    check_email(admin, body.send_invite_email)
    apply_config_bounds(admin, body)
    secret = body.key if body.key is not None else new_key()
    if body.key is not None:
        check_chosen_key(admin, body.key)
    token = hash_key(secret)
    existing = await admin.store.get_row("keys", token)
    if existing is not None:
        # LiteLLM's quirk: asking for a key that exists answers 200 and changes nothing.
        return json_response({**await shown_key(admin, existing), "key": secret})
    await check_alias(admin, body.key_alias, token)
    now = time.time()
    columns = stored_columns(admin, body, set(KeyFields.model_fields), {}, now,
                             calendar_expiry=True)
    await check_throughput(admin, token, columns)
    await soft_budget_row(request, columns, {})
    who = actor(request)
    row = {"key_hash": token, "key_name": key_name(secret), **columns,
           "created_by": who, "updated_by": who, "created_at": now, "updated_at": now}
    created = await KEYS.create(request, token, row)
    if body.send_invite_email and created.get("user_id"):
        admin.notices.key_created(created, secret)
    return json_response({**await shown_key(admin, created), "key": secret,
                          "duration": body.duration})


# --- changing keys -------------------------------------------------------------------------------

@gated(Rule.OWN_KEYS)
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateKey)
    fields = body.model_fields_set - {"key"}
    if not fields:
        raise ClientError(400, "Nothing to update: pass at least one field besides 'key'")
    token, shown = key_ident(body.key)
    current = await admin.store.get_row("keys", token)
    if current is None:
        raise ClientError(401, f"Authentication Error: invalid user key - user key does not "
                               f"exist in db. User Key={shown}", kind="auth_error",
                          param="None")
    await check_owner(admin, request[PRINCIPAL], current, body.model_dump(include=fields))
    await _check_changed_permissions(admin, request[PRINCIPAL], body, fields, current)
    if "key_alias" in fields:
        await check_alias(admin, body.key_alias, token)
    changes = stored_columns(admin, body, fields, current, time.time(), calendar_expiry=False)
    if body.temp_budget_increase is not None and body.temp_budget_expiry is not None:
        # Kept in metadata, as LiteLLM keeps it.
        changes["metadata"] = {**changes.get("metadata", current.get("metadata") or {}),
                               "temp_budget_increase": body.temp_budget_increase,
                               "temp_budget_expiry": body.temp_budget_expiry.isoformat()}
    await check_throughput(admin, token, {**current, **changes})
    await soft_budget_row(request, changes, current)
    changes["updated_by"] = actor(request)
    row = await KEYS.update(request, token, shown, changes)
    if "spend" in changes:
        # The shared counter would otherwise go on from the old figure until it lapses.
        for period in (current, row):
            await admin.principals.cache.drop(spend_counter("key", token, period))
    return json_response({**await shown_key(admin, row), "key": token})


async def _check_changed_permissions(admin: Admin, principal: Principal, body: KeyFields,
                                     fields: set[str], current: Row) -> None:
    moved = "team_id" in fields and body.team_id != current.get("team_id")
    if "permissions" in fields or moved:
        team_id = body.team_id if "team_id" in fields else current.get("team_id")
        after = body.permissions if "permissions" in fields else current.get("permissions")
        before = current.get("permissions") or {}
        if moved:
            # A key moved to another team (or out of one) takes its permissions there: a
            # guardrail its old team's admin switched off must be the new place's to allow.
            before = {name: on for name, on in before.items() if name == SPEND_PERMISSION}
        await check_permissions(admin, principal, before, after, team_id)


@gated(Rule.OWN_KEYS)
async def regenerate(request: web.Request, admin: Admin) -> web.Response:
    """A new secret for a key, which keeps everything else; the old secret stops working."""
    body = await parse_body(request, RegenerateKey) if request.can_read_body else RegenerateKey()
    named = request.match_info.get("key") or body.key
    refuse_nul({"key": named})
    if not named:
        raise ClientError(400, "Name the key to regenerate: /key/{key}/regenerate or a 'key' "
                               "field", param="key")
    if admin.master_key is not None and named == admin.master_key:
        raise ClientError(400, "The master key is set in the config, not through the API; "
                               "change general_settings.master_key there", param="key")
    token, shown = key_ident(named)
    current = await admin.store.get_row("keys", token)
    if current is None:
        raise ClientError(404, str({"error": f"Key {shown} not found."}),
                          kind="not_found_error", param="key")
    fields = body.model_fields_set - {"key", "new_key", "new_master_key"}
    await check_owner(admin, request[PRINCIPAL], current, body.model_dump(include=fields))
    await _check_changed_permissions(admin, request[PRINCIPAL], body, fields, current)
    secret = body.new_key if body.new_key is not None else new_key()
    if body.new_key is not None:
        check_chosen_key(admin, body.new_key)
        if await admin.store.get_row("keys", hash_key(secret)) is not None:
            raise ClientError(400, "new_key is already in use; choose another",
                              param="new_key")
    if "key_alias" in fields:
        await check_alias(admin, body.key_alias, token)
    changes = stored_columns(admin, body, fields, current, time.time(), calendar_expiry=False)
    new_token = hash_key(secret)
    row = await KEYS.update(request, token, shown, {
        **changes, "key_name": key_name(secret), "updated_by": actor(request)},
        new_ident=new_token)
    if row.get("user_id"):
        admin.notices.key_rotated(row, secret)
    return json_response({**await shown_key(admin, row), "key": secret, "token": None,
                          "token_id": new_token})


async def _set_blocked(request: web.Request, admin: Admin, blocked: bool) -> web.Response:
    body = await parse_body(request, KeyRef)
    if not (body.key.startswith(KEY_PREFIX) or HASH.fullmatch(body.key)):
        raise ClientError(400, "Invalid key format.", kind="bad_request_error", param="key")
    token, shown = key_ident(body.key)
    row = await KEYS.update(request, token, shown, {"blocked": blocked,
                                                    "updated_by": actor(request)})
    return json_response(await shown_key(admin, row))


# As in LiteLLM, no owner check beyond the route gate: an internal user may block any key.
@gated(Rule.OWN_KEYS)
async def block(request: web.Request, admin: Admin) -> web.Response:
    return await _set_blocked(request, admin, True)


@gated(Rule.OWN_KEYS)
async def unblock(request: web.Request, admin: Admin) -> web.Response:
    return await _set_blocked(request, admin, False)


@gated(Rule.OWN_KEYS)
async def delete(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, DeleteKeys)
    idents = dict(key_ident(key) for key in body.keys or [])
    if body.key_aliases:
        rows = await admin.store.list_rows("keys", where={"key_alias": body.key_aliases},
                                           limit=len(body.key_aliases) + 1)
        found = {row["key_alias"]: row["key_hash"] for row in rows}
        if not idents and not found:
            raise _no_keys_found()
        for alias in body.key_aliases:
            idents[found.get(alias, alias)] = alias
    if not idents:
        raise _no_keys_found()
    for token in idents:
        row = await admin.store.get_row("keys", token)
        if row is not None and not await owns(admin, request[PRINCIPAL], row):
            raise ClientError(403, str({"error": "You are not authorized to delete this key"}),
                              kind="internal_server_error", param="None")
    await KEYS.delete(request, idents)
    return json_response({"deleted_keys": [*(body.keys or []), *(body.key_aliases or [])]})


def _no_keys_found() -> ClientError:
    return ClientError(404, str({"error": "No keys found"}), kind="not_found_error")


# --- reading keys --------------------------------------------------------------------------------

@gated(Rule.SELF)
async def info(request: web.Request, admin: Admin) -> web.Response:
    """A key's stored record (never its secret). A virtual key may read itself: without
    ``key``, it is the caller's own key."""
    principal = request[PRINCIPAL]
    named = parse_query(request, KeyInfoQuery).key
    token = key_ident(named)[0] if named else principal.key_hash
    row = await admin.store.get_row("keys", token) if token else None
    # An unknown key is refused too, to a caller who could not read it: whether it exists
    # is not theirs to learn.
    if not reads_everything(principal) and not (row is not None
                                               and await may_read(admin, principal, row)):
        raise ClientError(403, f"You are not allowed to access this key's info. Your "
                               f"role={role_of(principal)}", kind="auth_error")
    if row is None:
        raise ClientError(404, "Key not found in database", kind="not_found_error",
                          param="key")
    view = await shown_key(admin, row)
    del view["token"], view["token_id"]
    # The hash even when the key itself was sent: the secret is shown once, at creation.
    return reply(KeyInfo, {"key": token, "info": view})


@gated(Rule.SELF)
async def health(request: web.Request, admin: Admin) -> web.Response:
    """The caller's key is usable (it passed authentication to get here); LiteLLM also
    checks the key's logging callbacks, which Gatehouse keys do not have."""
    return json_response({"key": "healthy", "logging_callbacks": None})


@gated(Rule.SELF)
async def list_keys(request: web.Request, admin: Admin) -> web.Response:
    query = parse_query(request, KeyListQuery)
    page, size = query.page, query.size
    if query.sort_by not in SORT_COLUMNS:
        raise ClientError(400, f"Invalid sort column. Must be one of: "
                               f"{', '.join(SORT_COLUMNS)}", param="sort_by")
    principal = request[PRINCIPAL]
    team_id, organization_id = query.team_id, query.organization_id
    user_id = await listed_user(admin, principal, query.user_id, team_id, organization_id)
    filters: Row = {"user_id": user_id, "team_id": team_id, "key_alias": query.key_alias,
                    "key_hash": key_ident(query.key_hash)[0] if query.key_hash else None}
    if organization_id is not None:
        # Keys belong to an organization through their teams.
        teams = [team["team_id"] for team in await admin.store.list_rows(
            "teams", where={"organization_id": organization_id}, limit=ORG_TEAMS_READ)]
        filters["team_id"] = [t for t in teams if team_id is None or t == team_id]
    # A key is listed when it matches the filters, or is one of the teams the caller
    # administers, or was made by the user listed.
    any_of = [filters]
    if query.include_team_keys:
        any_of.append({"team_id": await administered_teams(admin, principal)})
    maker = user_id or principal.user_id
    if query.include_created_by_keys and maker is not None:
        any_of.append({"created_by": maker})
    total = await admin.store.count_rows("keys", any_of=any_of)
    rows = await admin.store.list_rows(
        "keys", any_of=any_of, limit=size, offset=(page - 1) * size,
        order_by=SORT_COLUMNS[query.sort_by], descending=query.sort_order.lower() != "asc")
    # As in LiteLLM: hashes by default, whole records when asked.
    keys = [await shown_key(admin, r) if query.return_full_object else r["key_hash"]
            for r in rows]
    return reply(KeyList, {"keys": keys, "total_count": total, "current_page": page,
                           "total_pages": math.ceil(total / size)})
