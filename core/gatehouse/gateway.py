"""The gateway's long-lived state, built once from config and plugins: guardrail instances with
their hook implementations, model deployments, the shared upstream HTTP session, and the rules
that select a call's guardrails. Nothing here is rebuilt per call."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import itertools
import logging
import sys
from typing import Any, Iterator

import aiohttp
import orjson
import pluggy
from pydantic import ValidationError

from .accounting import Accounting
from .auth import public_paths
from .cache import make_cache
from .call import Call, Principal
from .calllog import CallLog
from .config import Config, ConfigError, format_validation_error
from .dispatch import HookImpl
from .errors import ClientError
from .gate import IpAllowList
from .guardrails import Guardrail
from .plugins import PluginError, PluginInfo, Plugins, Registered
from .principals import Principals, weak_master_key
from .providers import Provider
from .providers.mock import FixedReplyProvider
from .selection import Selection, build_selection, parse_requested
from .store import StoreUnavailable, open_store

log = logging.getLogger("gatehouse")

MODE_HOOKS = {"pre_call": ("pre_call",), "during_call": ("during_call",),
              "post_call": ("post_call", "post_call_stream"), "logging_only": ("logging_only",)}
CALLBACK_HOOKS = ("on_success", "on_failure")
# LiteLLM callbacks whose work the core always does (blocked users are checked on every call
# when blocked_user_list or /customer/block name any), accepted so its configs load unchanged.
CORE_CALLBACKS = frozenset({"blocked_user_check"})
SELECTION_CACHE_SIZE = 1024


class StartupError(Exception):
    """The gateway cannot start; worded for the operator."""


class Gateway:
    def __init__(self, config: Config, plugins: Plugins, *, source: str = "config"):
        self.config = config
        self.plugins = plugins
        self.source = source
        self.guardrails: dict[str, Guardrail] = {}
        self.guardrail_info: dict[str, dict[str, Any] | None] = {}
        self.hooks: dict[str, dict[str, HookImpl]] = {}
        self.global_callbacks: dict[str, tuple[HookImpl, ...]] = {}
        self._deployments: dict[str, list[tuple[str, Any, type[Provider]]]] = {}
        self._providers: dict[str, list[Provider]] = {}
        self._round_robin: dict[str, Iterator[Provider]] = {}
        self._selections: dict[tuple[str, ...], Selection] = {}
        self.http: aiohttp.ClientSession | None = None
        self._build_guardrails()
        self._check_models()
        self._collect_global_callbacks()
        settings = config.general_settings
        self._check_master_key()
        self.config_blocked_users = self._blocked_users_from_config()
        try:
            self.store = open_store(
                settings.database_url.get_secret_value() if settings.database_url else None,
                str(config.resolve_path(settings.database_path)))
        except ValueError as exc:
            raise ConfigError(f"{source}: general_settings.database_url: {exc}") from None
        self.cache = make_cache(
            settings.redis_url.get_secret_value() if settings.redis_url else None,
            settings.redis_namespace)
        self.principals = Principals(self)
        # Keys, teams and spend exist only behind a master key; without one the gateway is a
        # plain proxy that needs no database.
        self.tracks_spend = self.principals.enabled
        self.accounting = Accounting(self)
        try:
            self.ip_allow_list = IpAllowList(settings)
        except ValueError as exc:
            raise ConfigError(f"{source}: general_settings.allowed_ips: {exc}") from None
        self.public_paths = public_paths(settings.public_routes)
        self.max_response_bytes = (None if settings.max_response_size_mb is None
                                   else int(settings.max_response_size_mb * 1024 * 1024))
        self.call_log = CallLog(self)
        self.default_on = tuple(n for n, g in self.guardrails.items() if g.params.default_on)
        self.model_names = tuple(self._deployments)

    # --- building ------------------------------------------------------------------------------

    def _build_guardrails(self) -> None:
        entries = [(f"guardrails[{i}]", e.guardrail_name, e.params, e.guardrail_info)
                   for i, e in enumerate(self.config.guardrails)]
        for callback in self.config.all_callbacks:
            if callback in CORE_CALLBACKS or any(callback == e[1] for e in entries):
                continue
            registered = self.plugins.guardrail_type(callback)
            if registered is None:
                raise ConfigError(f"{self.source}: callbacks: unknown callback {callback!r}; "
                                  f"installed: {self._installed_types()}")
            known = registered.obj.Params.model_fields
            settings = self.config.settings.model_extra or {}
            params = {k: v for k, v in settings.items() if k in known}
            params.update(guardrail=registered.name, default_on=True)
            entries.append((f"callbacks[{callback!r}]", callback, params, None))
        for where, name, raw, info in entries:
            self._add_guardrail(where, name, raw, info)

    def _installed_types(self) -> str:
        return ", ".join(sorted(self.plugins.guardrail_types)) or "none"

    def _add_guardrail(self, where: str, name: str, raw: dict[str, Any], info: Any) -> None:
        if name in self.guardrails:
            raise ConfigError(f"{self.source}: {where}.guardrail_name: {name!r} is used twice")
        type_name = raw.get("guardrail")
        registered = self.plugins.guardrail_type(type_name)
        if registered is None and ":" in type_name:
            registered = self._import_local(where, type_name)
        if registered is None:
            raise ConfigError(
                f"{self.source}: {where}.params.guardrail: unknown guardrail type "
                f"{type_name!r}; installed types: {self._installed_types()} "
                f"(pip install the plugin that provides it)")
        cls: type[Guardrail] = registered.obj
        try:
            params = cls.Params.model_validate(
                {**raw, "guardrail": registered.name},
                context={"base_dir": self.config.base_dir, "config": self.config},
            )
        except ValidationError as exc:
            raise ConfigError(format_validation_error(
                exc, self.source, prefix=(*_split_where(where), "params"))) from None
        if not params.mode:
            params.mode = list(cls.default_modes)
        guardrail = cls(name, params)
        try:
            self.plugins.pm.register(guardrail, name=f"guardrail:{name}")
            self.plugins.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"guardrail type {registered.name!r} from {registered.plugin.distribution}: "
                f"{exc}") from None
        hooks = {}
        for caller in self.plugins.pm.get_hookcallers(guardrail) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is guardrail:
                    hooks[caller.name] = HookImpl(name, impl.function, tuple(impl.argnames),
                                                  guardrail)
        for mode in params.mode:
            if not any(h in hooks for h in MODE_HOOKS[mode]):
                supported = [m for m, hs in MODE_HOOKS.items() if any(h in hooks for h in hs)]
                raise ConfigError(
                    f"{self.source}: {where}.params.mode: guardrail type {registered.name!r} "
                    f"does not support mode {mode!r}; it supports: {', '.join(supported)}")
        self.guardrails[name] = guardrail
        self.guardrail_info[name] = info
        self.hooks[name] = hooks

    def _import_local(self, where: str, path: str) -> Registered:
        """``guardrail: module:Class`` -- a guardrail class imported straight from a module on
        sys.path or beside the config file, for experiments without packaging."""
        module_name, _, class_name = path.partition(":")
        where = f"{self.source}: {where}.params.guardrail"
        base = str(self.config.base_dir)
        added = base not in sys.path
        if added:
            sys.path.insert(0, base)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
            raise ConfigError(f"{where}: cannot import {module_name!r} (looked on sys.path and "
                              f"in {base}): {type(exc).__name__}: {exc}") from None
        finally:
            if added:
                sys.path.remove(base)
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Guardrail)):
            raise ConfigError(f"{where}: {path!r} is not a gatehouse.Guardrail subclass")
        return Registered(path, cls, PluginInfo(path, f"local module {module_name}", ""))

    def _check_models(self) -> None:
        for i, entry in enumerate(self.config.model_list):
            registered = self.plugins.providers.get(entry.params.provider)
            if registered is None:
                raise ConfigError(
                    f"{self.source}: model_list[{i}].params.model: unknown provider "
                    f"{entry.params.provider!r} in {entry.params.model!r}; installed providers: "
                    f"{', '.join(sorted(self.plugins.providers)) or 'none'}")
            self._deployments.setdefault(entry.model_name, []).append(
                (entry.model_name, entry.params, registered.obj))

    def _collect_global_callbacks(self) -> None:
        pm = self.plugins.pm
        for hook_name in CALLBACK_HOOKS:
            impls = []
            for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
                if not isinstance(impl.plugin, Guardrail):
                    impls.append(HookImpl(impl.plugin_name, impl.function,
                                          tuple(impl.argnames)))
            self.global_callbacks[hook_name] = tuple(impls)

    def _check_master_key(self) -> None:
        settings = self.config.general_settings
        if settings.master_key is None or settings.allow_weak_master_key:
            return
        problem = weak_master_key(settings.master_key.get_secret_value())
        if problem:
            raise ConfigError(
                f"{self.source}: general_settings.master_key: refusing a weak master key "
                f"({problem}); use a long random one (e.g. 'sk-' + `openssl rand -hex 24`), or "
                f"set general_settings.allow_weak_master_key: true for local experiments")

    def _blocked_users_from_config(self) -> frozenset[str]:
        listed = self.config.settings.blocked_user_list
        if listed is None:
            return frozenset()
        if isinstance(listed, list):
            return frozenset(listed)
        path = self.config.resolve_path(listed)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{self.source}: settings.blocked_user_list: cannot read {path}: "
                              f"{exc.strerror}") from None
        return frozenset(line.strip() for line in lines
                         if line.strip() and not line.lstrip().startswith("#"))

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        self.http = aiohttp.ClientSession(
            connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
            auto_decompress=True,
        )
        for name, deployments in self._deployments.items():
            self._providers[name] = [cls(model_name, params, self.http)
                                     for model_name, params, cls in deployments]
            self._round_robin[name] = itertools.cycle(self._providers[name])
        try:
            if self.tracks_spend:
                try:
                    await self.store.open()
                except StoreUnavailable as exc:
                    raise StartupError(f"cannot open the database ({exc})") from exc
                self.accounting.start()
            for name, guardrail in self.guardrails.items():
                try:
                    await guardrail.start(self)
                except Exception as exc:
                    raise StartupError(f"guardrail {name!r} failed to start: {exc}") from exc
            for impl in reversed(self.plugins.pm.hook.startup.get_hookimpls()):
                try:
                    result = impl.function(gateway=self)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    raise StartupError(
                        f"startup hook of plugin {impl.plugin_name!r} failed: {exc}") from exc
        except StartupError:
            # Nothing will call stop() for a start that never finished.
            await self.stop()
            raise
        self.call_log.start()

    async def stop(self) -> None:
        await self.call_log.stop()
        await self.accounting.stop()
        for impl in reversed(self.plugins.pm.hook.shutdown.get_hookimpls()):
            try:
                result = impl.function(gateway=self)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 - keep shutting the rest down
                log.exception("shutdown hook of plugin %r failed", impl.plugin_name)
        for guardrail in self.guardrails.values():
            try:
                await guardrail.stop()
            except Exception:  # noqa: BLE001
                log.exception("guardrail %r failed to stop", guardrail.name)
        for providers in self._providers.values():
            for provider in providers:
                await provider.close()
        if self.http is not None:
            await self.http.close()
            # Let the connector's transports finish closing before the loop goes away.
            await asyncio.sleep(0)
        await self.store.close()
        await self.cache.close()

    # --- per call ------------------------------------------------------------------------------

    def provider_for(self, call: Call, mock_response: str | None = None) -> Provider:
        rotation = self._round_robin.get(call.model)
        if rotation is None:
            raise ClientError(
                400, f"Invalid model name passed in model={call.model}. "
                     f"Call /v1/models to view available models.",
                param="model", code="model_not_found")
        provider = next(rotation)
        if mock_response is not None:
            return FixedReplyProvider(mock_response, provider.model_name, provider.params,
                                      provider.http)
        return provider

    def select(self, call: Call, requested: Any, principal: Principal) -> Selection:
        """The guardrails for this call: default_on, the key's, and the request's."""
        wanted = parse_requested(requested, self.guardrails)
        call.guardrail_extra = wanted
        names = set(self.default_on)
        names.update(principal.guardrails)
        names.update(wanted)
        chosen = tuple(
            name for name, guardrail in self.guardrails.items()
            if name in names and not (
                guardrail.permission is not None
                and principal.permissions.get(guardrail.permission) is False)
        )
        selection = self._selections.get(chosen)
        if selection is None:
            if len(self._selections) >= SELECTION_CACHE_SIZE:
                self._selections.clear()
            selection = build_selection(self, chosen)
            self._selections[chosen] = selection
        return selection

    async def complete(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A chat completion on one of the gateway's own models, without guardrails -- for
        plugins that ask a model (e.g. a Llama Guard deployment). Raises UpstreamError."""
        call = Call(request_id=request_id, call_type="chat_completion", model=model_name,
                    body={**body, "stream": False})
        return (await self.provider_for(call).complete(call)).data


def _split_where(where: str) -> tuple:
    # "guardrails[2]" -> ("guardrails", 2); "callbacks['x']" -> ("callbacks", "x")
    head, _, rest = where.partition("[")
    rest = rest.rstrip("]").strip("'\"")
    return (head, int(rest)) if rest.isdigit() else (head, rest)
