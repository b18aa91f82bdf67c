"""The configured guardrails, built once at start-up: one instance per ``guardrails:`` entry and
per ``callbacks:`` shorthand, each registered with pluggy, with the hooks it implements for the
modes config gives it; and the plugin modules' own ``on_success`` / ``on_failure`` callbacks."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pluggy
from pydantic import ValidationError

from ..config import (Config, ConfigError, Problems, format_path, model_keys,
                      validation_problems)
from ..plugins import PluginError, PluginInfo, Plugins, Registered
from .base import Guardrail, GuardrailParams
from .dispatch import HookImpl

MODE_HOOKS = {"pre_call": ("pre_call",), "during_call": ("during_call",),
              "post_call": ("post_call", "post_call_stream"), "logging_only": ("logging_only",)}
CALLBACK_HOOKS = ("on_success", "on_failure")
# The mode each guardrail hook runs in; callbacks run in none.
HOOK_MODES = {hook: mode for mode, hooks in MODE_HOOKS.items() for hook in hooks}
# LiteLLM callbacks whose work the core always does (blocked users are checked on every call
# when blocked_user_list or /customer/block name any), accepted so its configs load unchanged.
CORE_CALLBACKS = frozenset({"blocked_user_check"})


class GuardrailSet(Mapping[str, Guardrail]):
    """Guardrail name -> instance, in config order, with what each one was configured with.

    ``hooks[name]`` maps a hook name to that guardrail's implementation; ``callbacks`` holds
    the plugin modules' ``on_success`` / ``on_failure`` implementations, which see every call.
    """

    def __init__(self) -> None:
        self.by_name: dict[str, Guardrail] = {}
        self.info: dict[str, dict[str, Any] | None] = {}
        self.hooks: dict[str, dict[str, HookImpl]] = {}
        self.callbacks: dict[str, tuple[HookImpl, ...]] = {}
        self.default_on: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Guardrail:
        return self.by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)


def build_guardrails(config: Config, plugins: Plugins, source: str) -> GuardrailSet:
    """Every guardrail config names, checked against the installed types. Raises one ConfigError
    naming every misconfigured entry (worded for its author), or PluginError (a plugin that
    misbehaves)."""
    built = GuardrailSet()
    problems = Problems(source)
    names: set[str] = set()
    for i, entry in enumerate(config.guardrails):
        with problems.gather():
            name = entry.guardrail_name
            if name in names:
                raise ConfigError.in_file(source, f"guardrails[{i}].guardrail_name: {name!r} "
                                                  f"is used twice")
            names.add(name)
            _add(built, config, plugins, source, name, entry.params, entry.guardrail_info,
                 at=("guardrails", i, entry.written("params")))
    settings = config.written("settings")
    for where, callback in config.callback_entries():
        if callback in CORE_CALLBACKS or callback in names:
            continue
        with problems.gather():
            registered = plugins.guardrail_type(callback)
            if registered is None:
                raise ConfigError.in_file(
                    source, f"{where}: unknown callback {callback!r}: "
                            f"{plugins.why_no_type(callback)}; accepted callbacks: "
                            f"{_accepted_callbacks(plugins)}, or a guardrail_name from "
                            f"guardrails:")
            options = param_keys(registered.obj.Params)
            params = {k: v for k, v in (config.settings.model_extra or {}).items()
                      if k in options}
            params.update(guardrail=registered.name, default_on=True)
            # Its params are the settings beside the callback, so errors point there.
            _add(built, config, plugins, source, callback, params, None, at=(settings,),
                 note=f" (read by callback {callback!r} at {where})")
    problems.check()
    built.default_on = tuple(n for n, g in built.by_name.items() if g.params.default_on)
    built.callbacks = _plugin_callbacks(plugins)
    return built


# The callbacks: shorthand sets these itself, whatever settings say.
SHORTHAND_SETS = frozenset({"guardrail", "default_on"})


def param_keys(params: type[GuardrailParams]) -> frozenset[str]:
    """The settings keys the ``callbacks:`` shorthand hands to a type with these params."""
    return frozenset(model_keys(params)) - SHORTHAND_SETS


def shorthand_options(plugins: Plugins) -> frozenset[str]:
    """The settings keys the ``callbacks:`` shorthand hands to some installed type."""
    return frozenset().union(*(param_keys(r.obj.Params)
                               for r in plugins.guardrail_types.values()))


def _loaded_types(plugins: Plugins) -> str:
    return ", ".join(sorted(plugins.guardrail_types)) or "none"


def _accepted_callbacks(plugins: Plugins) -> str:
    accepted = [f"{r.name} (or {', '.join(r.aliases)})" if r.aliases else r.name
                for r in plugins.guardrail_types.values()]
    return ", ".join(sorted([*accepted, *CORE_CALLBACKS]))


def _add(built: GuardrailSet, config: Config, plugins: Plugins, source: str, name: str,
         raw: dict[str, Any], info: Any, *, at: tuple, note: str = "") -> None:
    """Build and register one guardrail whose params sit at ``at`` in the file; every problem
    ends with ``note``."""
    def refuse(where: tuple, problem: str) -> ConfigError:
        return ConfigError.in_file(source, f"{format_path(where)}: {problem}{note}")

    type_name = raw.get("guardrail")
    registered = plugins.guardrail_type(type_name)
    if registered is None and ":" in type_name:
        registered = _import_local(config, type_name, lambda p: refuse((*at, "guardrail"), p))
    if registered is None:
        raise refuse((*at, "guardrail"),
                     f"unknown guardrail type {type_name!r}: {plugins.why_no_type(type_name)}; "
                     f"loaded types: {_loaded_types(plugins)}")
    cls: type[Guardrail] = registered.obj
    try:
        params = cls.Params.model_validate(
            {**raw, "guardrail": registered.name},
            context={"base_dir": config.base_dir, "config": config},
        )
    except ValidationError as exc:
        raise ConfigError.in_file(source, *(
            f"{problem}{note}"
            for problem in validation_problems(exc, model=cls.Params, prefix=at))) from None
    if not params.mode:
        params.mode = list(cls.default_modes)
    guardrail = cls(name, params)
    try:
        plugins.pm.register(guardrail, name=f"guardrail:{name}")
        plugins.pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"guardrail type {registered.name!r} from {registered.plugin.distribution}: "
            f"{exc}") from None
    hooks = {}
    for caller in plugins.pm.get_hookcallers(guardrail) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is guardrail:
                hooks[caller.name] = HookImpl(name, impl.function, tuple(impl.argnames),
                                              guardrail, HOOK_MODES.get(caller.name, ""))
    for mode in params.mode:
        if not any(h in hooks for h in MODE_HOOKS[mode]):
            supported = [m for m, hs in MODE_HOOKS.items() if any(h in hooks for h in hs)]
            raise refuse((*at, "mode"),
                         f"guardrail type {registered.name!r} does not support mode {mode!r}; "
                         f"it supports: {', '.join(supported)}")
    built.by_name[name] = guardrail
    built.info[name] = info
    built.hooks[name] = hooks


def _import_local(config: Config, path: str,
                  refuse: Callable[[str], ConfigError]) -> Registered:
    """``guardrail: module:Class`` -- a guardrail class imported straight from a module on
    sys.path or beside the config file, for experiments without packaging."""
    module_name, _, class_name = path.partition(":")
    base = str(config.base_dir)
    added = base not in sys.path
    if added:
        sys.path.insert(0, base)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise refuse(f"cannot import {module_name!r} (looked on sys.path and in {base}): "
                     f"{type(exc).__name__}: {exc}") from None
    finally:
        if added:
            sys.path.remove(base)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Guardrail)):
        raise refuse(f"{path!r} is not a gatehouse.Guardrail subclass")
    return Registered(path, cls, PluginInfo(path, f"local module {module_name}", ""))


def _plugin_callbacks(plugins: Plugins) -> dict[str, tuple[HookImpl, ...]]:
    callbacks = {}
    for hook_name in CALLBACK_HOOKS:
        impls = []
        for impl in reversed(getattr(plugins.pm.hook, hook_name).get_hookimpls()):
            if not isinstance(impl.plugin, Guardrail):
                impls.append(HookImpl(impl.plugin_name, impl.function, tuple(impl.argnames)))
        callbacks[hook_name] = tuple(impls)
    return callbacks
