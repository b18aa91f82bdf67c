"""Audit rows for every create, update and delete of keys, teams, users, end users, budgets,
organizations, memberships, stored models, guardrails and pass-through endpoints, in
LiteLLM's shape, kept
when ``store_audit_logs: true``.

Callers pass the admin API's views of the rows, which never hold a key's secret.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from .backend import StoreUnavailable
from .database import Store

log = logging.getLogger("gatehouse.audit")

Action = Literal["created", "updated", "deleted"]

# LiteLLM's table names, so tools that read its audit logs read ours.
TABLE_NAMES = {"keys": "LiteLLM_VerificationToken", "teams": "LiteLLM_TeamTable",
               "users": "LiteLLM_UserTable", "end_users": "LiteLLM_EndUserTable",
               "budgets": "LiteLLM_BudgetTable", "organizations": "LiteLLM_OrganizationTable",
               "team_members": "LiteLLM_TeamMembership",
               "organization_members": "LiteLLM_OrganizationMembership",
               "models": "LiteLLM_ProxyModelTable", "guardrails": "LiteLLM_GuardrailsTable",
               # LiteLLM keeps them in its config table, under general_settings.
               "pass_through_endpoints": "LiteLLM_Config"}


class AuditLog:
    def __init__(self, store: Store, *, enabled: bool):
        self.store = store
        self.enabled = enabled

    async def record(self, kind: str, action: Action, object_id: str,
                     before: dict[str, Any] | None, updated: dict[str, Any], *,
                     changed_by: str, changed_by_api_key: str | None = None) -> None:
        if not self.enabled:
            return
        row = {
            "id": str(uuid.uuid4()),
            "updated_at": datetime.now(UTC).isoformat(),
            "changed_by": changed_by,
            "changed_by_api_key": changed_by_api_key,
            "action": action,
            "table_name": TABLE_NAMES[kind],
            "object_id": object_id,
            "before_value": before,
            "updated_values": updated,
        }
        try:
            await self.store.write_audit(row)
        except StoreUnavailable:
            # The change itself is already committed: reporting it as failed would be a lie,
            # so the row goes to the log, where it can still be recovered.
            log.error("audit row not written, the database is unreachable: %s",
                      orjson.dumps(row).decode())
