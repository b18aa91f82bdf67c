"""Audit rows for every create, update and delete of keys and teams, in LiteLLM's shape, kept
when ``store_audit_logs: true``.

Callers pass the admin API's views of the rows, which never hold a key's secret.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web

from .appkeys import GATEWAY
from .store import StoreUnavailable

log = logging.getLogger("gatehouse.audit")

Action = Literal["created", "updated", "deleted"]

# LiteLLM's table names, so tools that read its audit logs read ours.
TABLE_NAMES = {"keys": "LiteLLM_VerificationToken", "teams": "LiteLLM_TeamTable"}
CHANGED_BY_HEADER = "litellm-changed-by"


async def record(request: web.Request, kind: str, action: Action, object_id: str,
                 before: dict[str, Any] | None, updated: dict[str, Any]) -> None:
    gateway = request.app[GATEWAY]
    if not gateway.config.settings.store_audit_logs:
        return
    row = {
        "id": str(uuid.uuid4()),
        "updated_at": datetime.now(UTC).isoformat(),
        # A UI acting for a person names them in this header; otherwise only the master key
        # can have made the change.
        "changed_by": request.headers.get(CHANGED_BY_HEADER) or "master_key",
        "action": action,
        "table_name": TABLE_NAMES[kind],
        "object_id": object_id,
        "before_value": before,
        "updated_values": updated,
    }
    try:
        await gateway.store.write_audit(row)
    except StoreUnavailable:
        # The change itself is already committed: reporting it as failed would be a lie, so
        # the row goes to the log, where it can still be recovered.
        log.error("audit row not written, the database is unreachable: %s",
                  orjson.dumps(row).decode())
