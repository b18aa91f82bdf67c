"""The composition root: builds every part of the gateway from config and plugins, hands each
exactly what it needs, and owns start and stop. Nothing here runs per call, and no part
reaches back into this module."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from typing import Any

import aiohttp
import orjson

from .access.accounting import Accounting
from .access.budget_resets import BudgetResets
from .access.credentials import master_key, public_paths
from .access.gate import CallGate, IpAllowList
from .access.key_rotation import KeyRotations
from .access.jwt_auth import JwtAuth, load_settings as load_jwt_settings
from .access.model_access import ModelAccess
from .access.notices import NO_NOTICES, Notifier
from .access.prices import Prices
from .access.principals import Principals, config_blocked_users
from .access.retention import RetentionJob, retention_periods
from .admin.context import Admin
from .admin.key_columns import check_key_settings
from .admin.models import Models
from .config import Config, ConfigError, Problems
from .config.unknown_keys import check_setting_keys
from .guardrails.registry import LiveGuardrails, build_guardrails, shorthand_options
from .guardrails.selection import Selector
from .guardrails.stored import StoredGuardrails
from .ops.email import EmailNotifier, EmailSettings
from .ops.health import BackendProbe, Health
from .ops.metrics import Metrics
from .ops.routes import Status
from .ops.tracing import Tracing
from .plugins import Plugins
from .proxy.calllog import CallLog
from .proxy.fallbacks import Fallbacks
from .proxy.passthrough import PassThrough, build_all
from .proxy.pipeline import Pipeline
from .proxy.router import Router
from .proxy.stored_models import StoredModels
from .proxy.stored_passthrough import StoredPassThrough
from .store.audit import AuditLog
from .store.backend import StoreUnavailable, open_store
from .store.cache import RedisCache, make_cache
from .store.models import GuardrailRows, ModelRows, PassThroughRows
from .store.retention import Retention
from .store.sealed import Sealer

log = logging.getLogger("gatehouse")


class StartupError(Exception):
    """The gateway cannot start; worded for the operator."""


class Gateway:
    def __init__(self, config: Config, plugins: Plugins, *, source: str = "config"):
        self.config = config
        self.plugins = plugins
        settings = config.general_settings
        # Every part checks its share of the config before anything is built on it, so a file
        # with several mistakes is refused once, naming them all.
        problems = Problems(source)
        self.model_access = ModelAccess()
        with problems.gather():
            check_setting_keys(config, source, shorthand_options(plugins))
        with problems.gather():
            self.guardrails = build_guardrails(config, plugins, source)
        with problems.gather():
            self.router = Router(config.model_list, plugins.providers, source,
                                 config.router_settings.aliases(), self.model_access)
        with problems.gather():
            master = master_key(settings, source)
        with problems.gather():
            blocked_users = config_blocked_users(config, source)
        with problems.gather():
            try:
                self.store = open_store(
                    settings.database_url.get_secret_value() if settings.database_url else None,
                    str(config.resolve_path(settings.database_path)))
            except ValueError as exc:
                raise ConfigError.in_file(source, f"general_settings.database_url: {exc}") \
                    from None
        with problems.gather():
            self.ip_allow_list = IpAllowList(settings, source)
        # The setting, not `master`: a master key refused above leaves `master` unset.
        if settings.models_in_db and settings.master_key is None:
            problems.found.append(
                "general_settings.store_model_in_db: models are kept in the database, which "
                "the gateway keeps only with general_settings.master_key; set one")
        with problems.gather():
            check_key_settings(config.settings, source)
        jwt_settings = None
        with problems.gather():
            jwt_settings = load_jwt_settings(settings, source)
        pass_through_endpoints = []
        with problems.gather():
            pass_through_endpoints = build_all(settings.pass_through_endpoints)
        email = None
        with problems.gather():
            email = EmailSettings.from_env(os.environ, source) if config.sends_email else None
        retention = None
        with problems.gather():
            retention = retention_periods(settings, source)
        problems.check()
        self.cache = make_cache(
            settings.redis_url.get_secret_value() if settings.redis_url else None,
            settings.redis_namespace)
        self.guardrails.engine.share(self.cache)
        # Invitations, keys and budget alerts by email; told to nobody without it.
        self.notices: Notifier = NO_NOTICES if email is None else EmailNotifier(
            email, self.store, self.cache)
        self.principals = Principals(master, self.store, self.cache, blocked_users,
                                     key_header=settings.litellm_key_header_name)
        if jwt_settings is not None:
            self.principals.jwt = JwtAuth(jwt_settings, self.principals, self._session)
        self.budget_resets = BudgetResets(self.principals)
        self.retention = RetentionJob(Retention(self.store, **retention)) if retention else None
        # Keys, teams and spend exist only behind a master key; without one the gateway is a
        # plain proxy that needs no database.
        self.tracks_spend = self.principals.enabled
        prices = Prices(config.model_list)
        self.accounting = Accounting(self.store, self.cache, prices,
                                     flush_interval=settings.spend_flush_interval,
                                     notices=self.notices)
        self.public_paths = public_paths(settings.public_routes)
        self.metrics = Metrics(
            self.router, prices,
            end_user_labels=config.settings.enable_end_user_cost_tracking_prometheus_only,
        ) if config.wants("prometheus") else None
        if self.metrics is not None and not config.settings.require_auth_for_metrics_endpoint:
            self.public_paths |= {"/metrics", "/metrics/"}
        self.tracing = Tracing() if config.wants("otel", "opentelemetry") else None
        observers = [o for o in (self.metrics, self.tracing) if o is not None]
        self.call_log = CallLog(self.accounting if self.tracks_spend else None, observers,
                                self.tracing.capture if self.tracing is not None else None,
                                store_prompts=settings.store_prompts_in_spend_logs)
        # Stored params are sealed with LITELLM_SALT_KEY where set (so the master key can be
        # rotated), else with the master key, as LiteLLM does.
        sealer = Sealer(os.environ.get("LITELLM_SALT_KEY") or master or "")
        # The config's guardrails, joined by those stored in the database (with one).
        self.live_guardrails = LiveGuardrails(self.guardrails)
        self.stored_guardrails = StoredGuardrails(
            GuardrailRows(self.store), self.live_guardrails, self.guardrails, config, plugins,
            sealer) if self.tracks_spend else None
        self.pipeline = Pipeline(self.router, Selector(self.live_guardrails),
                                 CallGate(self.principals, self.accounting, self.model_access),
                                 self.call_log,
                                 settings,
                                 Fallbacks(self.router, self.model_access, config.settings,
                                           config.router_settings))
        # Checked against the routes once the app has them all (app.create_app).
        self.pass_through = PassThrough(
            pass_through_endpoints, self.pipeline.gate, self.pipeline.selector, self.call_log,
            keys=master is not None, key_header=settings.litellm_key_header_name)
        self.stored_pass_through = StoredPassThrough(
            PassThroughRows(self.store), self.pass_through, sealer) if self.tracks_spend else None
        self.admin = Admin(
            store=self.store, principals=self.principals,
            audit=AuditLog(self.store, enabled=config.settings.store_audit_logs),
            prices=prices, guardrails=self.live_guardrails, master_key=master,
            settings=config.settings, stored_guardrails=self.stored_guardrails,
            notices=self.notices)
        self.key_rotations = KeyRotations(self.principals, self.admin.audit,
                                          notices=self.notices)
        self.stored_models = StoredModels(ModelRows(self.store), self.router, sealer,
                                          prices) if settings.models_in_db else None
        self.models = Models(self.router, self.model_access, self.stored_models)
        probed = self.metrics.probed if self.metrics is not None else None
        self.health = Health(self.router, settings.health_check_interval,
                             background=settings.background_health_checks)
        self.status = Status(
            self.router, self.live_guardrails, plugins, self.health, self.cache,
            BackendProbe("database", self.store.ping, probed) if self.tracks_spend else None,
            BackendProbe("redis", self.cache.ping, probed)
            if isinstance(self.cache, RedisCache) else None)
        self.http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        assert self.http is not None, "the gateway has not started"
        return self.http

    async def start(self, *, check_only: bool = False) -> None:
        """Start every part. ``check_only`` checks that the database can be opened instead of
        opening (and creating, and migrating) it, for a check that must write nothing."""
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self.http = aiohttp.ClientSession(
            connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
            auto_decompress=True,
        )
        self.router.start(self.http)
        self.pass_through.start(self.http)
        try:
            if self.tracks_spend:
                try:
                    await (self.store.check() if check_only else self.store.open())
                except StoreUnavailable as exc:
                    raise StartupError(f"cannot open the database ({exc})") from exc
                self.accounting.start()
                if self.stored_models is not None and not check_only:
                    await self.stored_models.start()
                if self.stored_pass_through is not None and not check_only:
                    await self.stored_pass_through.start()
                if not check_only:
                    self.budget_resets.start()
                    self.key_rotations.start()
                    if self.retention is not None:
                        self.retention.start()
            for name, guardrail in self.guardrails.items():
                try:
                    await guardrail.start(self.router)
                except Exception as exc:
                    raise StartupError(f"guardrail {name!r} failed to start: {exc}") from exc
            if self.stored_guardrails is not None and not check_only:
                await self.stored_guardrails.start_with(self.router)
            for impl in reversed(self.plugins.pm.hook.startup.get_hookimpls()):
                try:
                    result = impl.function(gateway=self)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    raise StartupError(
                        f"startup hook of plugin {impl.plugin_name!r} failed: {exc}") from exc
            if not check_only:
                self.health.start()
        except StartupError:
            # Nothing will call stop() for a start that never finished.
            await self.stop()
            raise
        self.call_log.start()

    async def stop(self) -> None:
        await self.health.stop()
        await self.call_log.stop()
        if self.stored_models is not None:
            await self.stored_models.stop()
        if self.stored_pass_through is not None:
            await self.stored_pass_through.stop()
        if self.retention is not None:
            await self.retention.stop()
        await self.key_rotations.stop()
        await self.budget_resets.stop()
        await self.accounting.stop()
        # The mails under way need the database and the cache, closed below.
        await self.notices.drain()
        for impl in reversed(self.plugins.pm.hook.shutdown.get_hookimpls()):
            try:
                result = impl.function(gateway=self)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - keep shutting the rest down
                log.exception("shutdown hook of plugin %r failed", impl.plugin_name)
        if self.stored_guardrails is not None:
            await self.stored_guardrails.stop()
        for guardrail in self.guardrails.values():
            try:
                await guardrail.stop()
            except Exception:  # noqa: BLE001
                log.exception("guardrail %r failed to stop", guardrail.name)
        await self.router.close()
        if self.http is not None:
            await self.http.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
        await self.store.close()
        await self.cache.close()
        if self.tracing is not None:
            await self.tracing.close()

    def tracing_middlewares(self) -> list[Any]:
        return [self.tracing.middleware] if self.tracing is not None else []
