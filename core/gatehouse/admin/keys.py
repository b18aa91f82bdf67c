"""Virtual keys: ``/key/generate``, ``/key/update``, ``/key/info``, ``/key/list``,
``/key/delete``, ``/key/regenerate``, ``/key/block``, ``/key/unblock``, ``/key/health``,
``/key/service-account/generate``, with LiteLLM's fields, defaults and response bodies.

Only a key's sha256 and a short display name are stored; the key itself is in the response that
makes it and nowhere else. Wherever a key is named, the caller may give the key or its hash.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, ValidationError, model_validator

from ..access import durations
from ..access.limits import spend_counter
from ..access.credentials import KEY_PREFIX, hash_key, key_name, new_key, weak_master_key
from ..access.key_routes import KEY_TYPES
from ..access.roles import Rule, reads_everything, role_of
from ..config import ConfigError, Settings, format_path
from ..errors import ClientError, json_response
from ..guardrails.call import PRINCIPAL, Principal
from ..proxy.schemas import refuse_nul
from ..store.database import Row
from .bodies import (Body, Duration, Limit, Query, Reply, Update, parse_body, parse_query,
                     reply)
from .budgets import BudgetFields, budget_view, create_budget
from .context import Admin, admin_route, check_email, check_guardrails, gated
from .key_owners import (
    administered_teams,
    check_generation_rules,
    check_permissions,
    check_new_key,
    check_owner,
    listed_user,
    may_read,
    owns,
)
from .tables import Table, actor, wire_view

MAX_PAGE_SIZE = 100
HASH = re.compile(r"[0-9a-f]{64}")
# Fields LiteLLM keeps in a key's metadata rather than in columns of their own; a response
# shows them there, with the top-level field null.
IN_METADATA = ("model_rpm_limit", "model_tpm_limit", "rpm_limit_type", "tpm_limit_type",
               "guardrails", "tags", "enforced_params", "prompts", "allowed_passthrough_routes")
# Fields a response always has, null unless the key has them as columns.
RESPONSE_NULLS = ("duration", "litellm_budget_table", *IN_METADATA)
# upperbound_key_generate_params: the fields it may cap, and those that are durations.
UPPER_BOUNDED = ("max_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "duration",
                 "budget_duration")
# The team keys read to add up what is promised to them; an organization's teams read to list
# its keys.
TEAM_KEYS_READ = 10_000
ORG_TEAMS_READ = 10_000
SORT_COLUMNS = {"spend": "spend", "max_budget": "max_budget", "created_at": "created_at",
                "updated_at": "updated_at", "token": "key_hash", "key_alias": "key_alias"}
LimitType = Literal["guaranteed_throughput", "best_effort_throughput", "dynamic"]


class ModelBudget(Body):
    budget_limit: float = Field(ge=0)
    time_period: Duration | None = None


class KeyFields(Body):
    key_alias: str | None = None
    # Lifetime from now ("30s", "2h", "7d", "1mo"); null: never expires.
    duration: Duration | None = None
    models: list[str] | None = Field(default_factory=list)
    aliases: dict[str, Any] | None = Field(default_factory=dict)
    config: dict[str, Any] | None = Field(default_factory=dict)
    spend: float | None = Field(default=0.0, ge=0)
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration | None = None
    budget_id: str | None = None
    soft_budget: float | None = Field(default=None, ge=0)
    max_parallel_requests: Limit | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    rpm_limit_type: LimitType | None = None
    tpm_limit_type: LimitType | None = None
    model_max_budget: dict[str, ModelBudget] | None = Field(default_factory=dict)
    model_rpm_limit: dict[str, Limit] | None = None
    model_tpm_limit: dict[str, Limit] | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    guardrails: list[str] | None = None
    prompts: list[str] | None = None
    tags: list[str] | None = None
    enforced_params: list[str] | None = None
    # Per-key switches read by guardrails, e.g. {"hide_secrets": false}.
    permissions: dict[str, Any] | None = Field(default_factory=dict)
    allowed_cache_controls: list[str] | None = Field(default_factory=list)
    allowed_routes: list[str] | None = Field(default_factory=list)
    allowed_passthrough_routes: list[str] | None = None
    key_type: Literal["default", "llm_api", "management", "read_only"] | None = None
    blocked: bool | None = None
    user_id: str | None = None
    team_id: str | None = None
    object_permission: dict[str, Any] | None = None
    send_invite_email: bool | None = None
    auto_rotate: bool | None = False
    rotation_interval: Duration | None = None


class GenerateKey(KeyFields):
    # A key the caller chose instead of a random one.
    key: str | None = None


class UpdateKey(KeyFields, Update):
    key: str
    temp_budget_increase: float | None = Field(default=None, ge=0)
    temp_budget_expiry: Annotated[datetime, Field(strict=False)] | None = None

    @model_validator(mode="after")
    def _temp_budget(self) -> UpdateKey:
        if (self.temp_budget_increase is None) != (self.temp_budget_expiry is None):
            raise ValueError("temp_budget_increase and temp_budget_expiry must be set together")
        return self


class RegenerateKey(KeyFields, Update):
    key: str | None = None
    new_key: str | None = None
    new_master_key: str | None = None


class DeleteKeys(Body):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None

    @model_validator(mode="after")
    def _names_some(self) -> DeleteKeys:
        if not self.keys and not self.key_aliases:
            raise ValueError("At least one of 'keys' or 'key_aliases' must be provided.")
        return self


class KeyRef(Body):
    key: str


class KeyView(Reply):
    token: str | None = Field(default=None, description="The key's SHA-256 hash: how routes "
                                                        "name it (/key/info gives it as key)")
    key_name: str = Field(description="The key shortened for display, e.g. sk-...a1b2")
    key_alias: str | None
    user_id: str | None
    team_id: str | None
    models: list[str] = Field(description="Models the key may call; [] is every model")
    spend: float
    max_budget: float | None
    tpm_limit: int | None
    rpm_limit: int | None
    metadata: dict[str, Any]
    blocked: bool | None
    expires: str | None = Field(description="ISO 8601, UTC; null: never")
    created_at: str
    updated_at: str


class KeyInfoQuery(Query):
    key: str | None = Field(default=None, description="The key or its hash; without it, the "
                                                      "calling key")


class KeyInfo(Reply):
    key: str = Field(description="The key's hash")
    info: KeyView


class KeyListQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE)
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    key_hash: str | None = Field(default=None, description="The key or its hash")
    key_alias: str | None = None
    return_full_object: bool = Field(default=False, description="Whole records, not hashes")
    include_team_keys: bool = Field(
        default=False, description="Also the keys of the teams the caller manages")
    include_created_by_keys: bool = False
    sort_by: str = Field(default="created_at", description=f"One of {', '.join(SORT_COLUMNS)}")
    sort_order: Literal["asc", "desc", "ASC", "DESC"] = "desc"


class KeyList(Reply):
    keys: list[str] | list[KeyView] = Field(description="Hashes, or with return_full_object "
                                                        "whole records")
    total_count: int
    current_page: int
    total_pages: int


def key_view(row: Row) -> dict[str, Any]:
    """A stored key as LiteLLM shows it: ``token`` and ``token_id`` its hash, the fields kept
    in metadata null at the top level."""
    view = wire_view({k: v for k, v in row.items() if k != "guardrails"}, {"key_hash": "token"})
    view.update(dict.fromkeys(RESPONSE_NULLS), token_id=row["key_hash"])
    return view


KEYS = Table("keys", "key", key_view)


async def shown_key(admin: Admin, row: Row) -> dict[str, Any]:
    """A key as a response shows it: with the budget row it links to, if any."""
    view = key_view(row)
    if row.get("budget_id"):
        view["litellm_budget_table"] = budget_view(
            await admin.store.get_row("budgets", row["budget_id"]))
    return view


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


def key_ident(value: str) -> tuple[str, str]:
    """``(hash, how to name it in an error)`` for a key or a key's hash."""
    if value.startswith(KEY_PREFIX):
        return hash_key(value), key_name(value)
    return value, value


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
    _apply_config_bounds(admin, body)
    secret = body.key if body.key is not None else new_key()
    if body.key is not None:
        _check_chosen_key(admin, body.key)
    token = hash_key(secret)
    existing = await admin.store.get_row("keys", token)
    if existing is not None:
        # LiteLLM's quirk: asking for a key that exists answers 200 and changes nothing.
        return json_response({**await shown_key(admin, existing), "key": secret})
    await _check_alias(admin, body.key_alias, token)
    now = time.time()
    columns = _columns(admin, body, set(KeyFields.model_fields), {}, now,
                       calendar_expiry=True)
    await _check_throughput(admin, token, columns)
    await _soft_budget_row(request, columns, {})
    who = actor(request)
    row = {"key_hash": token, "key_name": key_name(secret), **columns,
           "created_by": who, "updated_by": who, "created_at": now, "updated_at": now}
    created = await KEYS.create(request, token, row)
    if body.send_invite_email and created.get("user_id"):
        admin.notices.key_created(created, secret)
    return json_response({**await shown_key(admin, created), "key": secret,
                          "duration": body.duration})


def check_key_settings(settings: Settings, source: str) -> None:
    """``default_key_generate_params`` and ``upperbound_key_generate_params`` must hold what
    ``/key/generate`` would take, or every new key would fail (or pass unchecked); so must
    ``key_generation_settings``' required params."""
    problems = []
    for section in ("default_key_generate_params", "upperbound_key_generate_params"):
        try:
            _config_params(getattr(settings, section))
        except ValidationError as exc:
            problems += [f"litellm_settings.{section}.{format_path(err['loc'])}: {err['msg']}"
                         for err in exc.errors()]
    # A required field /key/generate does not take could never be given: every key refused.
    rules = settings.key_generation_settings
    for scope in ("team_key_generation", "personal_key_generation"):
        rule = getattr(rules, scope) if rules else None
        required = (rule.required_params or []) if rule else []
        problems += [f"litellm_settings.key_generation_settings.{scope}.required_params: "
                     f"{name!r} is not a field of /key/generate"
                     for name in required if name not in GenerateKey.model_fields]
    if problems:
        raise ConfigError.in_file(source, *problems)


def _config_params(params: dict[str, Any]) -> dict[str, Any]:
    """The key fields of a config section, as /key/generate reads them."""
    known = {name: value for name, value in params.items() if name in KeyFields.model_fields}
    checked = KeyFields.model_validate(known)
    return {name: getattr(checked, name) for name in known}


def _apply_config_bounds(admin: Admin, body: GenerateKey) -> None:
    """``default_key_generate_params`` fills fields not given; ``upperbound_key_generate_params``
    caps the rest, and fills those still not given with the cap."""
    given = body.model_fields_set
    for name, value in _config_params(admin.settings.default_key_generate_params).items():
        if name not in given:
            setattr(body, name, value)
    for name, cap in admin.settings.upperbound_key_generate_params.items():
        if name not in UPPER_BOUNDED:
            continue
        value = getattr(body, name)
        if value is None:
            setattr(body, name, cap)
            continue
        measure = durations.seconds if name in ("duration", "budget_duration") else float
        if measure(value) > measure(cap):
            raise ClientError(400, str({"error": f"{name} is over max limit set in config - "
                                                 f"user_value={value}; max_value={cap}"}),
                              param=name)


def _check_chosen_key(admin: Admin, key: str) -> None:
    if not key.startswith(KEY_PREFIX) or len(key) == len(KEY_PREFIX):
        raise ClientError(400, f"Invalid key format. LiteLLM Virtual Key must start with "
                               f"'{KEY_PREFIX}'. Received: {key_name(key)}", param="key")
    if key == admin.master_key:
        raise ClientError(400, "A virtual key cannot be the master key", param="key")
    problem = weak_master_key(key)
    if problem:
        raise ClientError(400, f"A chosen key must be as hard to guess as a master key: "
                               f"{problem}", param="key")


async def _check_alias(admin: Admin, alias: str | None, token: str) -> None:
    if alias is None:
        return
    holders = await admin.store.list_rows("keys", where={"key_alias": alias}, limit=2)
    if any(row["key_hash"] != token for row in holders):
        raise ClientError(400, f"Key with alias '{alias}' already exists. Unique key aliases "
                               f"across all keys are required.", kind="bad_request_error",
                          param="key_alias")


def _columns(admin: Admin, body: KeyFields, fields: set[str], current: Row, now: float, *,
             calendar_expiry: bool) -> Row:
    """The stored columns for the request fields in ``fields``. ``current`` is the stored row
    an update changes ({} for a new key). A new key's expiry is calendar-aligned, as
    LiteLLM's is; an update's is now plus the duration."""
    values = (body.changes(exclude=set(type(body).model_fields) - fields)
              if isinstance(body, Update) else body.model_dump(include=fields))
    columns: Row = {name: value for name, value in values.items()
                    if name not in IN_METADATA and name not in NOT_STORED}
    if "metadata" in values or any(name in values for name in IN_METADATA):
        metadata = dict(values["metadata"] if "metadata" in values
                        else current.get("metadata") or {})
        for name in IN_METADATA:
            if name in values:
                if values[name] is None:
                    metadata.pop(name, None)
                else:
                    metadata[name] = values[name]
        columns["metadata"] = metadata
        check_guardrails(admin, metadata.get("guardrails") or [], "guardrails")
    if "duration" in values:
        columns["expires"] = _after(values["duration"], now, calendar=calendar_expiry)
    if "budget_duration" in values:
        columns["budget_reset_at"] = _after(values["budget_duration"], now, calendar=True)
    if "auto_rotate" in values or "rotation_interval" in values:
        columns["key_rotation_at"] = _next_rotation(
            values.get("auto_rotate", current.get("auto_rotate")),
            values.get("rotation_interval", current.get("rotation_interval")), now)
    if values.get("key_type") is not None and not values.get("allowed_routes"):
        columns["allowed_routes"] = KEY_TYPES[values["key_type"]]
    if "blocked" in columns and columns["blocked"] is None:
        columns["blocked"] = False
    if "spend" in columns and columns["spend"] is None:
        columns["spend"] = 0.0
    return columns


def _after(duration: str | None, now: float, *, calendar: bool) -> float | None:
    """When a duration from ``now`` ends: None for none, now for a zero one."""
    if duration is None:
        return None
    if durations.seconds(duration) == 0:
        return now
    return durations.next_reset(duration, now) if calendar else durations.after(duration, now)


def _next_rotation(auto_rotate: bool | None, interval: str | None, now: float) -> float | None:
    """When a key flagged ``auto_rotate`` is first rotated: one ``rotation_interval`` from now.
    A flag without an interval is refused: the key would silently never rotate."""
    if not auto_rotate:
        return None
    if interval is None or durations.seconds(interval) == 0:
        raise ClientError(400, "auto_rotate needs a rotation_interval longer than 0 (e.g. "
                               "'30d')", param="rotation_interval")
    return durations.after(interval, now)


async def _soft_budget_row(request: web.Request, columns: Row, current: Row) -> None:
    """A soft budget on a key with no budget row makes one holding it, as LiteLLM does, so
    that it shows under ``litellm_budget_table``. A key that links to a budget row already
    keeps it (it may be shared); the key's own ``soft_budget`` wins over the row's."""
    soft = columns.get("soft_budget")
    if soft is None or columns.get("budget_id", current.get("budget_id")):
        return
    budget = await create_budget(request, BudgetFields(soft_budget=soft), {"soft_budget"})
    columns["budget_id"] = budget["budget_id"]


async def _check_throughput(admin: Admin, token: str, row: Row) -> None:
    """A key whose ``rpm_limit_type`` / ``tpm_limit_type`` is ``guaranteed_throughput`` is
    promised its limit: its team's keys together may not be promised more than the team has."""
    metadata = row.get("metadata") or {}
    wanted = [(unit, field) for unit, field in (("RPM", "rpm_limit"), ("TPM", "tpm_limit"))
              if metadata.get(f"{field}_type") == "guaranteed_throughput"
              and row.get(field) is not None]
    team = await admin.store.get_row("teams", row["team_id"]) if wanted and row.get(
        "team_id") else None
    if team is None:
        return
    others = [k for k in await admin.store.list_rows("keys", where={"team_id": team["team_id"]},
                                                      limit=TEAM_KEYS_READ)
              if k["key_hash"] != token]
    for unit, field in wanted:
        if team.get(field) is None:
            continue
        allocated = sum(k[field] or 0 for k in others)
        if allocated + row[field] > team[field]:
            raise ClientError(400, f"Allocated {unit} limit={allocated} + Key {unit} limit="
                                   f"{row[field]} is greater than team {unit} limit="
                                   f"{team[field]}", param=field)


# Request fields that shape other columns rather than being stored as they are.
NOT_STORED = frozenset({"duration", "key_type", "send_invite_email", "key", "new_key",
                        "new_master_key", "temp_budget_increase", "temp_budget_expiry"})


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
        await _check_alias(admin, body.key_alias, token)
    changes = _columns(admin, body, fields, current, time.time(), calendar_expiry=False)
    if body.temp_budget_increase is not None and body.temp_budget_expiry is not None:
        # Kept in metadata, as LiteLLM keeps it.
        changes["metadata"] = {**changes.get("metadata", current.get("metadata") or {}),
                               "temp_budget_increase": body.temp_budget_increase,
                               "temp_budget_expiry": body.temp_budget_expiry.isoformat()}
    await _check_throughput(admin, token, {**current, **changes})
    await _soft_budget_row(request, changes, current)
    changes["updated_by"] = actor(request)
    row = await KEYS.update(request, token, shown, changes)
    if "spend" in changes:
        # The shared counter would otherwise go on from the old figure until it lapses.
        for period in (current, row):
            await admin.principals.cache.drop(spend_counter("key", token, period))
    return json_response({**await shown_key(admin, row), "key": token})


async def _check_changed_permissions(admin: Admin, principal: Principal, body: KeyFields,
                                     fields: set[str], current: Row) -> None:
    if "permissions" in fields:
        team_id = body.team_id if "team_id" in fields else current.get("team_id")
        await check_permissions(admin, principal, current.get("permissions"), body.permissions,
                                team_id)


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
        _check_chosen_key(admin, body.new_key)
        if await admin.store.get_row("keys", hash_key(secret)) is not None:
            raise ClientError(400, "new_key is already in use; choose another",
                              param="new_key")
    if "key_alias" in fields:
        await _check_alias(admin, body.key_alias, token)
    changes = _columns(admin, body, fields, current, time.time(), calendar_expiry=False)
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
