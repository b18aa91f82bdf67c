"""What every admin route is handed: the services it may use, behind a gate that lets in the
roles the route's rule names (``access/roles.py``), with a database outage answered as a 503
rather than a 500."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..access.notices import NO_NOTICES, Notifier
from ..access.prices import Prices
from ..access.principals import Principals
from ..access.roles import Rule, check_route
from ..config.settings import Settings
from ..errors import ClientError
from ..guardrails.call import PRINCIPAL
from ..guardrails.registry import LiveGuardrails
from ..guardrails.stored import StoredGuardrails
from ..store.audit import AuditLog
from ..store.backend import StoreUnavailable
from ..store.database import Store
from .bodies import check_query


@dataclass(frozen=True, slots=True)
class Admin:
    store: Store
    principals: Principals
    audit: AuditLog
    prices: Prices
    # The guardrails served now (configured and stored): keys and teams may only name these.
    guardrails: LiveGuardrails
    master_key: str | None
    # litellm_settings: default_key_generate_params, upperbound_key_generate_params.
    settings: Settings = field(default_factory=Settings)
    # Guardrails kept in the database (POST /guardrails); None without one.
    stored_guardrails: StoredGuardrails | None = None
    # Told of invitations, new keys and new secrets (email, when on).
    notices: Notifier = NO_NOTICES


ADMIN = web.AppKey("admin", Admin)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AdminHandler = Callable[[web.Request, Admin], Awaitable[web.StreamResponse]]


def gated(rule: Rule) -> Callable[[AdminHandler], Handler]:
    """A route that lets in the callers its rule allows; a database outage is a 503 rather
    than a 500."""

    def decorate(handler: AdminHandler) -> Handler:
        @functools.wraps(handler)
        async def route(request: web.Request) -> web.StreamResponse:
            admin = request.app[ADMIN]
            if not admin.principals.enabled:
                raise ClientError(403, "Admin routes need general_settings.master_key to be set",
                                  kind="auth_error")
            check_route(request[PRINCIPAL], rule, request.path)
            check_query(request)
            try:
                return await handler(request, admin)
            except StoreUnavailable:
                raise ClientError(503, "The database cannot be reached; try again shortly",
                                  kind="service_unavailable") from None

        return route

    return decorate


# Proxy admins only.
admin_route = gated(Rule.ADMIN)


def check_email(admin: Admin, asked: bool | None) -> None:
    """Refuse ``send_invite_email`` while no email can be sent, rather than drop it unsaid."""
    if asked and not admin.notices.enabled:
        raise ClientError(400, "send_invite_email: email is not set up; set "
                               "general_settings.alerting: [\"email\"] (or litellm_settings."
                               "callbacks: [\"smtp_email\"]) and the SMTP_* environment "
                               "variables", param="send_invite_email")


def check_guardrails(admin: Admin, names: list[str], param: str) -> None:
    """Refuse guardrail names the config does not define: they would silently never run."""
    unknown = [name for name in names if name not in admin.guardrails]
    if unknown:
        raise ClientError(400, f"Unknown guardrail(s): {', '.join(unknown)}. Configured "
                               f"guardrails: {', '.join(admin.guardrails) or 'none'}",
                          param=param)
