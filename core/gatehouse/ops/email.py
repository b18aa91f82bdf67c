"""Email notifications: invitations, new keys, rotated keys and budget alerts, sent over SMTP
to the user a key or invitation belongs to (their ``user_email``), as LiteLLM's ``smtp_email``
callback and ``alerting: ["email"]`` send them, with its ``EMAIL_*`` branding variables.

Nothing here runs on the request path: each notice becomes a task that looks the user up,
renders the mail (``ui/templates/email``: an HTML part and a plain-text part) and sends it. A
mail that cannot be sent is one warning in the log -- never the key, never the SMTP password
-- and fails nothing. Budget alerts go out at most once per alert and key per
``EMAIL_BUDGET_ALERT_TTL``, counted in the shared cache, so gateways sharing a Redis send one.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from markupsafe import Markup

from ..access.notices import Notifier
from ..config import ConfigError
from ..store.cache import Cache
from ..store.database import Store
from ..store.schema import Row
from ..ui import text

log = logging.getLogger("gatehouse.email")

EXTRA = "pip install 'gatehouse-proxy[email]'"
HIDDEN_KEY = "[Key hidden for security - retrieve from dashboard]"
SEND_TIMEOUT = 30.0  # seconds one mail may take to hand to the SMTP server
# (variable, default) of each subject the operator may brand.
SUBJECTS = {
    "invitation": ("EMAIL_SUBJECT_INVITATION", "Gatehouse: New User Invitation"),
    "key_created": ("EMAIL_SUBJECT_KEY_CREATED", "Gatehouse: API Key Created"),
    "key_rotated": ("EMAIL_SUBJECT_KEY_ROTATED", "Gatehouse: API Key Rotated"),
}
BUDGET_SUBJECTS = {"soft_budget": "Gatehouse: Soft Budget Crossed",
                   "max_budget": "Gatehouse: Budget Alert"}


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    port: int = 587
    tls: bool = True  # STARTTLS
    username: str | None = None
    password: str | None = None
    logo_url: str | None = None
    support_contact: str | None = None
    signature: Markup | None = None
    subjects: Mapping[str, str] | None = None
    include_api_key: bool = True
    base_url: str = "http://0.0.0.0:4000"
    alert_fraction: float = 0.8  # of max_budget spent, when its alert goes out
    alert_ttl: float = 86400.0  # seconds in which an alert goes out once

    @classmethod
    def from_env(cls, env: Mapping[str, str], source: str) -> EmailSettings:
        """The settings LiteLLM reads from the environment; every mistake named at once."""
        problems: list[str] = []

        def number(name: str, default: float, kind: type, low: float, high: float) -> Any:
            raw = env.get(name)
            try:
                value = default if raw is None else kind(raw)
                if low <= value <= high:
                    return value
            except ValueError:
                pass
            problems.append(f"{name}={raw!r}: expected a number from {low:g} to {high:g}")
            return default

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name)
            if raw is None or raw.lower() in ("true", "false"):
                return default if raw is None else raw.lower() == "true"
            problems.append(f"{name}={raw!r}: expected True or False")
            return default

        for name in ("SMTP_HOST", "SMTP_SENDER_EMAIL"):
            if not env.get(name):
                problems.append(f"{name} is not set")
        settings = cls(
            host=env.get("SMTP_HOST", ""), sender=env.get("SMTP_SENDER_EMAIL", ""),
            port=number("SMTP_PORT", 587, int, 1, 65535), tls=flag("SMTP_TLS", True),
            username=env.get("SMTP_USERNAME") or None, password=env.get("SMTP_PASSWORD") or None,
            logo_url=env.get("EMAIL_LOGO_URL") or None,
            # LiteLLM's default is its own support address; ours is whoever sends the mail.
            support_contact=env.get("EMAIL_SUPPORT_CONTACT") or env.get("SMTP_SENDER_EMAIL"),
            # The operator's own HTML, shown as written.
            signature=Markup(env["EMAIL_SIGNATURE"]) if env.get("EMAIL_SIGNATURE") else None,
            subjects={event: env.get(name) or default
                      for event, (name, default) in SUBJECTS.items()},
            include_api_key=flag("EMAIL_INCLUDE_API_KEY", True),
            base_url=(env.get("PROXY_BASE_URL") or cls.base_url).rstrip("/"),
            alert_fraction=number("EMAIL_BUDGET_ALERT_MAX_SPEND_ALERT_PERCENTAGE", 0.8, float,
                                  0.01, 1),
            alert_ttl=number("EMAIL_BUDGET_ALERT_TTL", 86400.0, float, 1, 10 * 365 * 86400))
        if settings.password and not settings.tls and not _loopback(settings.host):
            problems.append(f"SMTP_TLS=False with SMTP_PASSWORD set would send the password "
                            f"to {settings.host} unencrypted; use SMTP_TLS=True")
        if importlib.util.find_spec("aiosmtplib") is None:
            problems.append(f"sending email needs the email extra: {EXTRA}")
        if problems:
            raise ConfigError.in_file(source, *(f"email: {p}" for p in problems))
        return settings


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def crossed(threshold: float | None, before: float, after: float) -> bool:
    return threshold is not None and before < threshold <= after


class EmailNotifier(Notifier):
    enabled = True

    def __init__(self, settings: EmailSettings, store: Store, cache: Cache):
        self.settings = settings
        self.store = store
        self.cache = cache
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the events ------------------------------------------------------------------------------

    def user_invited(self, user: Row, secret: str | None) -> None:
        facts = [("User", user.get("user_alias") or user.get("user_email") or user["user_id"])]
        if secret:
            facts.append(("API key", self._shown(secret)))
        self._spawn("invitation", user["user_id"], facts,
                    "You have been invited to the LLM gateway.",
                    "Sign in to see your models, keys and spend.")

    def key_created(self, key: Row, secret: str) -> None:
        self._spawn("key_created", key["user_id"], self._key_facts(key, secret),
                    "An API key was created for you.",
                    "Keep it secret: anyone holding it can call models on your behalf.")

    def key_rotated(self, key: Row, secret: str) -> None:
        self._spawn("key_rotated", key["user_id"], self._key_facts(key, secret),
                    "Your API key was given a new secret; the old one no longer works.",
                    "Update every client that uses it.")

    def spend_moved(self, kind: str, row: Row, before: float, after: float) -> None:
        # Keys alert their user; a team has nobody such an alert is addressed to.
        if kind != "key" or not row.get("user_id"):
            return
        budget = row.get("max_budget")
        for alert, threshold in (
                ("soft_budget", row.get("soft_budget")),
                ("max_budget", None if budget is None
                 else budget * self.settings.alert_fraction)):
            if crossed(threshold, before, after):
                self._track(alert, row["user_id"], self._budget_alert(alert, row, after))

    async def _budget_alert(self, alert: str, key: Row, spend: float) -> None:
        # The first gateway to count the alert in its period sends it.
        if await self.cache.incr(f"email-alert:{alert}:{key['key_hash']}", 1,
                                 ttl=self.settings.alert_ttl) != 1:
            return
        what = "soft budget" if alert == "soft_budget" else "budget"
        facts = [("Key", key.get("key_alias") or key.get("key_name")),
                 ("Spend", f"${spend:.4f}")]
        if key.get("soft_budget") is not None:
            facts.append(("Soft budget", f"${key['soft_budget']:g}"))
        if key.get("max_budget") is not None:
            facts.append(("Max budget", f"${key['max_budget']:g}"))
        await self._send(alert, key["user_id"], BUDGET_SUBJECTS[alert], facts,
                         f"Your API key has spent past its {what} alert.",
                         "Calls go on until the key reaches its max budget.")

    # --- sending ---------------------------------------------------------------------------------

    def _shown(self, secret: str) -> str:
        return secret if self.settings.include_api_key else HIDDEN_KEY

    def _key_facts(self, key: Row, secret: str) -> list[tuple[str, Any]]:
        facts: list[tuple[str, Any]] = [("API key", self._shown(secret))]
        if key.get("key_alias"):
            facts.append(("Alias", key["key_alias"]))
        if key.get("max_budget") is not None:
            facts.append(("Max budget", f"${key['max_budget']:g}"))
        return facts

    def _spawn(self, event: str, user_id: str, facts: list[tuple[str, Any]],
               *paragraphs: str) -> None:
        self._track(event, user_id, self._send(
            event, user_id, (self.settings.subjects or {})[event], facts, *paragraphs))

    def _track(self, event: str, user_id: str, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(event, user_id, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, event: str, user_id: str, job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except Exception as exc:  # noqa: BLE001 - a notice never fails what caused it
            # The type and the server's answer only: a traceback could carry the mail's text.
            log.warning("email not sent: %s email to user %s: %s: %s", event, user_id,
                        type(exc).__name__, exc)

    async def _send(self, event: str, user_id: str, subject: str,
                    facts: list[tuple[str, Any]], *paragraphs: str) -> None:
        import aiosmtplib  # the email extra, checked at start

        user = await self.store.get_row("users", user_id)
        to = (user or {}).get("user_email")
        if not to:
            log.info("%s email not sent: user %s has no user_email", event, user_id)
            return
        settings = self.settings
        context = {"subject": subject, "heading": subject.split(": ", 1)[-1],
                   "paragraphs": paragraphs, "facts": facts,
                   "link": ("Open the dashboard", f"{settings.base_url}/ui"),
                   "logo_url": settings.logo_url, "support_contact": settings.support_contact,
                   "signature": settings.signature}
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = settings.sender
        message["To"] = to
        message.set_content(text("email/message.txt", **context))
        message.add_alternative(text("email/message.html", **context), subtype="html")
        await aiosmtplib.send(message, hostname=settings.host, port=settings.port,
                              username=settings.username, password=settings.password,
                              start_tls=settings.tls, timeout=SEND_TIMEOUT)
        log.info("%s email sent to user %s", event, user_id)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks)
