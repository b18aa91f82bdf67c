"""Scheduled key rotation: a key made with ``auto_rotate`` and a ``rotation_interval`` gets a
new secret once its ``key_rotation_at`` has passed. The old secret stops working on every
gateway within a second; the key keeps everything else (spend, limits, alias), takes the new
secret's hash as its ``token`` / ``token_id`` and counts the rotation (``rotation_count``,
``last_rotation_at``, the next ``key_rotation_at`` one interval later).

The new secret is kept nowhere. With email on (``ops/email.py``) it is mailed to the key's
user, or they are told to fetch it; otherwise the owner gets a working secret with
``/key/regenerate``, finding the key by its alias. Each rotation is logged (never the secret)
and audited.

Runs once at start and then every minute; several gateways on one database may run it at
once: the update that renames a key is its lock, and only one of them finds the old name.
"""

from __future__ import annotations

import logging
import time

from ..store.audit import AuditLog
from . import durations
from .credentials import hash_key, key_name, new_key
from .notices import NO_NOTICES, Notifier
from .periodic import Periodic
from .principals import Principals

log = logging.getLogger("gatehouse.keys")

INTERVAL = 60.0  # seconds between runs
# Who an audit row says made the change.
ROTATOR = "key_rotation"


class KeyRotations(Periodic):
    name = "key-rotation"

    def __init__(self, principals: Principals, audit: AuditLog, *,
                 interval: float = INTERVAL, notices: Notifier = NO_NOTICES):
        super().__init__(interval)
        self.principals = principals
        self.audit = audit
        self.notices = notices

    async def run_once(self, now: float | None = None) -> dict[str, str]:
        """Rotate the keys that are due; return their new hashes by their old ones."""
        now = time.time() if now is None else now
        store = self.principals.store
        rotated: dict[str, str] = {}
        for key in await store.keys_to_rotate(now):
            old = key["key_hash"]
            try:
                next_at = durations.after(key["rotation_interval"], now)
            except ValueError:
                log.warning("key %s: rotation_interval %r cannot be read; not rotated",
                            old, key["rotation_interval"])
                continue
            if key["key_rotation_at"] is None:
                await store.schedule_rotation(old, next_at)
                continue
            secret = new_key()
            new = hash_key(secret)
            if not await store.rotate_key(old, new, key_name(secret), now, next_at):
                continue  # another gateway rotated it first
            for ident in (old, new):
                await self.principals.forget("key", ident)
            after = await store.get_row("keys", new) or {}
            await self.audit.record(
                "keys", "updated", old, {"token": old},
                {"token": new, "key_name": key_name(secret),
                 "rotation_count": after.get("rotation_count"),
                 "last_rotation_at": now, "key_rotation_at": next_at},
                changed_by=ROTATOR)
            if after.get("user_id") and self.notices.enabled:
                self.notices.key_rotated(after, secret)
                log.info("key %s (alias %r) rotated: its user is mailed the new secret "
                         "(new token %s)", old, key["key_alias"], new)
            else:
                log.warning("key %s (alias %r) rotated: its old secret no longer works and "
                            "its new one is not delivered anywhere; the owner gets a usable "
                            "secret with /key/regenerate (new token %s)", old,
                            key["key_alias"], new)
            rotated[old] = new
        return rotated
