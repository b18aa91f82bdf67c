"""Virtual keys: ``/key/generate``, ``/key/update``, ``/key/info``, ``/key/delete``,
``/key/list``.

Only a key's sha256 and a short display name are stored; the key itself is in the
``/key/generate`` response and nowhere else. Wherever a key is named (update, info, delete,
spend logs), the caller may give the key or its hash.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator

from ..access import durations
from ..access.credentials import hash_key, key_name, new_key, weak_master_key
from ..errors import ClientError, json_response
from ..store.database import Row
from .bodies import Body, Limit, parse_body, query_int, query_str
from .context import Admin, admin_route, check_guardrails
from .tables import Table, wire_view

KEY_PREFIX = "sk-"
MAX_PAGE_SIZE = 100


class KeyFields(Body):
    models: list[str] = Field(default_factory=list)
    max_budget: float | None = Field(default=None, ge=0)
    team_id: str | None = None
    user_id: str | None = None
    key_alias: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Per-key switches read by guardrails, e.g. {"hide_secrets": false}.
    permissions: dict[str, Any] = Field(default_factory=dict)
    # Guardrails that run on every call made with the key.
    guardrails: list[str] = Field(default_factory=list)
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    # "30s", "10m", "2h", "7d" from now; null: the key never expires.
    duration: str | None = None
    blocked: bool = False

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            durations.parse(value)
        return value


class GenerateKey(KeyFields):
    # A key the caller chose instead of a random one.
    key: str | None = None


class UpdateKey(KeyFields):
    key: str


class DeleteKeys(Body):
    keys: list[str] = Field(min_length=1)


def key_view(row: Row) -> dict[str, Any]:
    return wire_view(row, {"key_hash": "token"})


KEYS = Table("keys", "key", key_view)


def setup(app: web.Application) -> None:
    app.router.add_post("/key/generate", generate)
    app.router.add_post("/key/update", update)
    app.router.add_get("/key/info", info)
    app.router.add_post("/key/delete", delete)
    app.router.add_get("/key/list", list_keys)


def key_ident(value: str) -> tuple[str, str]:
    """``(hash, how to name it in an error)`` for a key or a key's hash."""
    if value.startswith(KEY_PREFIX):
        return hash_key(value), key_name(value)
    return value, value


@admin_route
async def generate(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, GenerateKey)
    secret = body.key if body.key is not None else new_key()
    if body.key is not None:
        _check_chosen_key(admin, body.key)
    token = hash_key(secret)
    if await admin.store.get_row("keys", token) is not None:
        raise ClientError(400, "This key already exists; choose another", param="key")
    now = time.time()
    row = {"key_hash": token, "key_name": key_name(secret),
           **await _columns(admin, body, set(KeyFields.model_fields)),
           "created_at": now, "updated_at": now}
    created = await KEYS.create(request, token, row)
    return json_response({"key": secret, **key_view(created)})


@admin_route
async def update(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, UpdateKey)
    token, shown = key_ident(body.key)
    changes = await _columns(admin, body, body.model_fields_set - {"key"})
    if not changes:
        raise ClientError(400, "Nothing to update: pass at least one field besides 'key'")
    row = await KEYS.update(request, token, shown, changes)
    return json_response({"key": token, **key_view(row)})


@admin_route
async def info(request: web.Request, admin: Admin) -> web.Response:
    token, shown = key_ident(query_str(request, "key"))
    return json_response({"key": token, "info": key_view(await KEYS.fetch(admin, token,
                                                                          shown))})


@admin_route
async def delete(request: web.Request, admin: Admin) -> web.Response:
    body = await parse_body(request, DeleteKeys)
    await KEYS.delete(request, dict(key_ident(key) for key in body.keys))
    return json_response({"deleted_keys": body.keys})


@admin_route
async def list_keys(request: web.Request, admin: Admin) -> web.Response:
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    size = query_int(request, "size", 10, low=1, high=MAX_PAGE_SIZE)
    rows = await admin.store.list_rows(
        "keys", where={"team_id": request.query.get("team_id"),
                       "user_id": request.query.get("user_id")},
        limit=size, offset=(page - 1) * size)
    # As in LiteLLM: hashes by default, whole records when asked.
    full = request.query.get("return_full_object", "").lower() == "true"
    return json_response({"keys": [key_view(r) if full else r["key_hash"] for r in rows],
                          "current_page": page, "page_size": size})


def _check_chosen_key(admin: Admin, key: str) -> None:
    if not key.startswith(KEY_PREFIX) or len(key) == len(KEY_PREFIX):
        raise ClientError(400, f"A chosen key must start with '{KEY_PREFIX}'", param="key")
    if key == admin.master_key:
        raise ClientError(400, "A virtual key cannot be the master key", param="key")
    problem = weak_master_key(key)
    if problem:
        raise ClientError(400, f"A chosen key must be as hard to guess as a master key: "
                               f"{problem}", param="key")


async def _columns(admin: Admin, body: KeyFields, fields: set[str]) -> Row:
    """The stored columns for the request fields in ``fields``, checked against the config
    and the database."""
    columns = body.model_dump(include=fields - {"duration"})
    if "duration" in fields:
        columns["expires"] = _expires(body.duration)
    if columns.get("team_id") is not None and await admin.store.get_row(
            "teams", columns["team_id"]) is None:
        raise ClientError(400, f"Team not found: {columns['team_id']}; create it with "
                               f"/team/new first", param="team_id")
    check_guardrails(admin, columns.get("guardrails", []), "guardrails")
    return columns


def _expires(duration: str | None) -> float | None:
    return None if duration is None else durations.after(duration, time.time())
