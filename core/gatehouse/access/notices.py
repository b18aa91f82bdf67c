"""What the gateway tells people about their accounts: a user invited, a key made or given a
new secret, a budget nearing its end. The parts where these happen hold a :class:`Notifier`
and call it as they happen; this one tells nobody, and is what they hold while email is off
(``ops/email.py`` is the one that sends).

Every method returns at once and never raises: whatever a notice needs (a lookup, a mail) runs
off the request path, and a notice that cannot be sent never fails what caused it."""

from __future__ import annotations

from ..store.schema import Row


class Notifier:
    # Whether notices reach anyone: a request asking for an email is refused when they do not.
    enabled = False

    def user_invited(self, user: Row, secret: str | None) -> None:
        """``user`` was made with an invitation; ``secret`` is the key made with it, if any."""

    def key_created(self, key: Row, secret: str) -> None:
        """``key`` was made for its user, who is to be told ``secret``."""

    def key_rotated(self, key: Row, secret: str) -> None:
        """``key`` has the new ``secret``, by ``/key/regenerate`` or scheduled rotation."""

    def spend_moved(self, kind: str, row: Row, before: float, after: float) -> None:
        """The spend of ``row`` (a ``key`` or ``team``) went from ``before`` to ``after``."""

    async def drain(self) -> None:
        """Wait for the notices under way."""


NO_NOTICES = Notifier()
