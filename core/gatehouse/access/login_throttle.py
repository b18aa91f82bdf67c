"""Password guessing at the admin UI's login: failed logins counted per username and per client
address in fixed windows (``general_settings.ui_login_failure_window`` seconds, aligned to the
clock like the rate-limit windows). Past either limit, attempts are refused without the
password being looked at until the window ends.

The counts are in the gateway's cache, so with Redis every worker and gateway shares them;
without, each process counts its own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from ..store.cache import Cache

log = logging.getLogger("gatehouse.auth")

# How much of a username the log quotes: the field is the client's, of any length.
LOGGED_USERNAME = 100


@dataclass(frozen=True)
class Attempt:
    """One login attempt, counted; ``retry_after`` (seconds) is set when it is refused."""

    username_key: str
    address_key: str
    retry_after: int | None


class LoginThrottle:
    def __init__(self, cache: Cache, *, per_username: int, per_address: int, window: int):
        self.cache = cache
        self.per_username = per_username
        self.per_address = per_address
        self.window = window

    async def attempt(self, username: str, address: str | None) -> Attempt:
        """Count the attempt as a failure before the password is checked -- concurrent guesses
        then cannot all slip in under the limit -- and refuse it past either limit."""
        # Wall-clock time: gateways sharing Redis must agree on where a window starts.
        now = time.time()
        window = int(now // self.window)
        username_key = f"ui_login_failures:username:{_digest(username)}:{window}"
        address_key = f"ui_login_failures:ip:{_digest(address or '')}:{window}"
        by_username, by_address = await self.cache.incr_many([
            (username_key, 1, self.window, 0.0), (address_key, 1, self.window, 0.0)])
        if by_username <= self.per_username and by_address <= self.per_address:
            return Attempt(username_key, address_key, None)
        retry_after = max(1, math.ceil((window + 1) * self.window - now))
        # One line per lock, not per refused attempt: a guesser could fill the log otherwise.
        # Shared counters reach each figure once, so one gateway of many writes it.
        if by_username == self.per_username + 1 or by_address == self.per_address + 1:
            reason = ("username" if by_username > self.per_username else "client address")
            log.warning("admin UI login locked for %d s: too many failed logins for the %s "
                        "(username %r, client address %s); further attempts are refused "
                        "unchecked until then", retry_after, reason,
                        username[:LOGGED_USERNAME], address)
        return Attempt(username_key, address_key, retry_after)

    async def succeeded(self, attempt: Attempt) -> None:
        """The username's failures are forgotten; the address's count gives this attempt back,
        so people logging in behind one address (an office's NAT) do not lock it out."""
        await self.cache.drop(attempt.username_key)
        await self.cache.incr(attempt.address_key, -1, ttl=self.window)


def _digest(value: str) -> str:
    # Client-chosen text of any length never becomes a cache key as it is.
    return hashlib.sha256(value.encode(errors="replace")).hexdigest()[:32]
