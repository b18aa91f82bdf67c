"""A key request's fields made into the key's stored columns, and the checks they must pass
first: the config's defaults and caps, a secret the caller chose, a unique alias, throughput
promised within the team's, a soft budget's budget row, expiry and rotation times."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ..access import durations
from ..access.credentials import KEY_PREFIX, key_name, weak_master_key
from ..access.key_routes import KEY_TYPES
from ..config import ConfigError
from ..config.problems import format_path
from ..config.settings import Settings
from ..errors import ClientError
from ..store.schema import Row
from .bodies import Update
from .budgets import BudgetFields, create_budget
from .context import Admin, check_guardrails
from .key_bodies import GenerateKey, KeyFields
from .key_views import IN_METADATA

# upperbound_key_generate_params: the fields it may cap, and those that are durations.
UPPER_BOUNDED = ("max_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "duration",
                 "budget_duration")
# The team keys read to add up what is promised to them.
TEAM_KEYS_READ = 10_000
# Request fields that shape other columns rather than being stored as they are.
NOT_STORED = frozenset({"duration", "key_type", "send_invite_email", "key", "new_key",
                        "new_master_key", "temp_budget_increase", "temp_budget_expiry"})


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


def apply_config_bounds(admin: Admin, body: GenerateKey) -> None:
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


def check_chosen_key(admin: Admin, key: str) -> None:
    if not key.startswith(KEY_PREFIX) or len(key) == len(KEY_PREFIX):
        raise ClientError(400, f"Invalid key format. LiteLLM Virtual Key must start with "
                               f"'{KEY_PREFIX}'. Received: {key_name(key)}", param="key")
    if key == admin.master_key:
        raise ClientError(400, "A virtual key cannot be the master key", param="key")
    problem = weak_master_key(key)
    if problem:
        raise ClientError(400, f"A chosen key must be as hard to guess as a master key: "
                               f"{problem}", param="key")


async def check_alias(admin: Admin, alias: str | None, token: str) -> None:
    if alias is None:
        return
    holders = await admin.store.list_rows("keys", where={"key_alias": alias}, limit=2)
    if any(row["key_hash"] != token for row in holders):
        raise ClientError(400, f"Key with alias '{alias}' already exists. Unique key aliases "
                               f"across all keys are required.", kind="bad_request_error",
                          param="key_alias")


def stored_columns(admin: Admin, body: KeyFields, fields: set[str], current: Row,
                   now: float, *, calendar_expiry: bool) -> Row:
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


async def soft_budget_row(request: web.Request, columns: Row, current: Row) -> None:
    """A soft budget on a key with no budget row makes one holding it, as LiteLLM does, so
    that it shows under ``litellm_budget_table``. A key that links to a budget row already
    keeps it (it may be shared); the key's own ``soft_budget`` wins over the row's."""
    soft = columns.get("soft_budget")
    if soft is None or columns.get("budget_id", current.get("budget_id")):
        return
    budget = await create_budget(request, BudgetFields(soft_budget=soft), {"soft_budget"})
    columns["budget_id"] = budget["budget_id"]


async def check_throughput(admin: Admin, token: str, row: Row) -> None:
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


