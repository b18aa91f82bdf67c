"""Every management route, registered with the services they share."""

from __future__ import annotations

from aiohttp import web

from . import (audit, budgets, customers, guardrails, keys, models, organizations, spend,
               spend_reports, teams, users)
from .context import ADMIN, Admin


def setup(app: web.Application, admin: Admin, served: models.Models) -> None:
    app[ADMIN] = admin
    for module in (keys, teams, customers, spend, spend_reports, audit,
                   budgets, users, organizations, guardrails):
        module.setup(app)
    models.setup(app, served)
