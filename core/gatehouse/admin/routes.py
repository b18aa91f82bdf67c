"""Every management route, registered with the services they share."""

from __future__ import annotations

from aiohttp import web

from ..proxy.passthrough import PassThrough
from ..proxy.stored_passthrough import StoredPassThrough
from . import (activity, audit, budgets, customers, guardrail_usage, guardrails, keys, models,
               organizations, passthrough, spend, spend_reports, teams, users)
from .context import ADMIN, Admin


def setup(app: web.Application, admin: Admin, served: models.Models,
          pass_through: PassThrough, stored_pass_through: StoredPassThrough | None) -> None:
    app[ADMIN] = admin
    passthrough.setup(app, pass_through, stored_pass_through)
    for module in (keys, teams, customers, spend, spend_reports, activity, audit,
                   budgets, users, organizations, guardrails, guardrail_usage):
        module.setup(app)
    models.setup(app, served)
