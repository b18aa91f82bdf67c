"""What every admin route is handed: the services it may use, behind the master-key gate, with
a database outage answered as a 503 rather than a 500."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from aiohttp import web

from ..access.prices import Prices
from ..access.principals import Principals
from ..config import Settings
from ..errors import ClientError
from ..store.audit import AuditLog
from ..store.database import Store, StoreUnavailable
from .bodies import check_query


@dataclass(frozen=True, slots=True)
class Admin:
    store: Store
    principals: Principals
    audit: AuditLog
    prices: Prices
    # The configured guardrail names: keys and teams may only name these.
    guardrails: Collection[str]
    master_key: str | None
    # litellm_settings: default_key_generate_params, upperbound_key_generate_params.
    settings: Settings = field(default_factory=Settings)


ADMIN = web.AppKey("admin", Admin)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AdminHandler = Callable[[web.Request, Admin], Awaitable[web.StreamResponse]]


def admin_route(handler: AdminHandler) -> Handler:
    """Only the master key passes; a database outage is a 503 rather than a 500."""
    return _route(handler, self_service=False)


def key_self_route(handler: AdminHandler) -> Handler:
    """As :func:`admin_route`, but a virtual key passes too: the handler limits it to itself."""
    return _route(handler, self_service=True)


def _route(handler: AdminHandler, *, self_service: bool) -> Handler:
    @functools.wraps(handler)
    async def route(request: web.Request) -> web.StreamResponse:
        admin = request.app[ADMIN]
        principal = request["principal"]
        if not (self_service and principal.key_hash is not None):
            admin.principals.require_admin(principal)
        check_query(request)
        try:
            return await handler(request, admin)
        except StoreUnavailable:
            raise ClientError(503, "The database cannot be reached; try again shortly",
                              kind="service_unavailable") from None

    return route


def check_guardrails(admin: Admin, names: list[str], param: str) -> None:
    """Refuse guardrail names the config does not define: they would silently never run."""
    unknown = [name for name in names if name not in admin.guardrails]
    if unknown:
        raise ClientError(400, f"Unknown guardrail(s): {', '.join(unknown)}. Configured "
                               f"guardrails: {', '.join(admin.guardrails) or 'none'}",
                          param=param)
