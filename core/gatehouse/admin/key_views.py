"""A stored key as the API shows it, and a key named by its secret or its hash.

Only a key's sha256 and a short display name are stored; the key itself is in the response that
makes it and nowhere else. Wherever a key is named, the caller may give the key or its hash.
"""

from __future__ import annotations

from typing import Any

from ..access.credentials import KEY_PREFIX, hash_key, key_name
from ..store.schema import Row
from .budgets import budget_view
from .context import Admin
from .tables import Table, wire_view

# Fields LiteLLM keeps in a key's metadata rather than in columns of their own; a response
# shows them there, with the top-level field null.
IN_METADATA = ("model_rpm_limit", "model_tpm_limit", "rpm_limit_type", "tpm_limit_type",
               "guardrails", "tags", "enforced_params", "prompts", "allowed_passthrough_routes")
# Fields a response always has, null unless the key has them as columns.
RESPONSE_NULLS = ("duration", "litellm_budget_table", *IN_METADATA)


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


def key_ident(value: str) -> tuple[str, str]:
    """``(hash, how to name it in an error)`` for a key or a key's hash."""
    if value.startswith(KEY_PREFIX):
        return hash_key(value), key_name(value)
    return value, value

