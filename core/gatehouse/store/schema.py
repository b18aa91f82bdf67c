"""The tables: the kinds of row the store keeps and their ids, how JSON and boolean columns are
stored, and the one id of a membership."""

from __future__ import annotations

from typing import Any

import orjson

Row = dict[str, Any]

JSON_COLUMNS = frozenset({"models", "metadata", "permissions", "guardrails", "members", "tags",
                          "before_value", "updated_values", "teams", "team_member_permissions",
                          "model_aliases", "aliases", "config", "model_max_budget",
                          "allowed_cache_controls", "allowed_routes", "object_permission",
                          "proxy_server_request", "response"})
BOOL_COLUMNS = frozenset({"blocked", "auto_rotate"})
TABLES = {"keys": ("gatehouse_keys", "key_hash"), "teams": ("gatehouse_teams", "team_id"),
          "users": ("gatehouse_users", "user_id"),
          "end_users": ("gatehouse_end_users", "user_id"),
          "budgets": ("gatehouse_budgets", "budget_id"),
          "organizations": ("gatehouse_organizations", "organization_id"),
          "team_members": ("gatehouse_team_members", "membership_id"),
          "organization_members": ("gatehouse_organization_members", "membership_id")}
# The rows that take their limits from a budget row (budget_id), and whose spend its reset
# zeroes.
BUDGET_LINKED = ("end_users", "team_members", "organization_members", "organizations")


def membership_id(group_id: str, user_id: str) -> str:
    """The one id of a team's or organization's membership: unambiguous whatever either id
    holds."""
    return orjson.dumps([group_id, user_id]).decode()


def encode(row: Row) -> Row:
    out = {}
    for column, value in row.items():
        if column in JSON_COLUMNS and value is not None:
            value = orjson.dumps(value).decode()
        elif column in BOOL_COLUMNS:
            value = int(bool(value))
        out[column] = value
    return out


def decode(row: Row) -> Row:
    out = dict(row)
    for column in JSON_COLUMNS & out.keys():
        if isinstance(out[column], str):
            out[column] = orjson.loads(out[column])
    for column in BOOL_COLUMNS & out.keys():
        out[column] = bool(out[column])
    return out
