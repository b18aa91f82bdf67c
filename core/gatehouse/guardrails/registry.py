"""The configured guardrails, built once at start-up: one instance per ``guardrails:`` entry and
per ``callbacks:`` shorthand, each registered with pluggy, with the hooks it implements for the
modes config gives it; and the plugin modules' own ``on_success`` / ``on_failure`` callbacks."""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import ValidationError

from ..config import Config, ConfigError, Problems
from ..config.keys import model_keys
from ..config.problems import format_path, validation_problems
from ..plugins import PluginError, PluginInfo, Plugins, Registered
from .base import Guardrail, GuardrailParams
from .dispatch import HookImpl
from .engine import Engine

if TYPE_CHECKING:
    from .selection import Selection

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
        # The database row (less its params) of each guardrail stored through the API.
        self.stored: dict[str, dict[str, Any]] = {}
        # The Selector's plans for this set, so a set and its plans are replaced together.
        self.selections: dict[tuple[str, ...], Selection] = {}
        # Shared by every set made from this one: the verdict cache and background runs.
        self.engine = Engine()

    def with_stored(self, config: Config, plugins: Plugins,
                    entries: list[tuple[dict[str, Any], dict[str, Any]]],
                    refused: Callable[[str, Exception], None]) -> GuardrailSet:
        """A new set: this one's guardrails (the config's, shared, not rebuilt) and one new
        guardrail per ``(row, params)`` stored. A row that cannot be built is passed to
        ``refused`` and left out, so one bad row never keeps the others from being served."""
        built = self._copy([name for name in self.by_name if name not in self.stored])
        for row, params in entries:
            name = row["guardrail_name"]
            try:
                if name in built.by_name:
                    raise ConfigError(f"the name {name!r} is taken by a configured guardrail")
                add_stored(built, config, plugins, name, params, row.get("guardrail_info"))
                problem = shadow_problem(built, name)
                if problem is not None:
                    for held in (built.by_name, built.info, built.hooks):
                        held.pop(name)
                    raise ConfigError(f"litellm_params.shadow_of: {problem}")
            except Exception as exc:  # noqa: BLE001 - a type's own __init__ may raise anything
                refused(name, exc)
                continue
            built.stored[name] = {k: v for k, v in row.items() if k != "litellm_params"}
        built.default_on = tuple(n for n, g in built.by_name.items() if g.params.default_on)
        return built

    def without(self, name: str) -> GuardrailSet:
        return self._copy([n for n in self.by_name if n != name])

    def _copy(self, names: list[str]) -> GuardrailSet:
        """A new set of these guardrails (the same instances), with no cached plans."""
        built = GuardrailSet()
        built.callbacks = self.callbacks
        built.engine = self.engine
        for name in names:
            built.by_name[name] = self.by_name[name]
            built.info[name] = self.info[name]
            built.hooks[name] = self.hooks[name]
            if name in self.stored:
                built.stored[name] = self.stored[name]
        built.default_on = tuple(n for n in names if built.by_name[n].params.default_on)
        return built

    def __getitem__(self, name: str) -> Guardrail:
        return self.by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_name)

    def __len__(self) -> int:
        return len(self.by_name)


class LiveGuardrails(Mapping[str, Guardrail]):
    """The guardrails served now: one :class:`GuardrailSet` (the config's and the stored
    ones), replaced whole when stored guardrails change. A call selects from the set current
    when it starts and keeps it to its end."""

    def __init__(self, current: GuardrailSet):
        self.current = current

    def __getitem__(self, name: str) -> Guardrail:
        return self.current.by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.current.by_name)

    def __len__(self) -> int:
        return len(self.current.by_name)

    @property
    def info(self) -> dict[str, dict[str, Any] | None]:
        return self.current.info

    @property
    def callbacks(self) -> dict[str, tuple[HookImpl, ...]]:
        return self.current.callbacks


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
    for i, entry in enumerate(config.guardrails):
        problem = shadow_problem(built, entry.guardrail_name)
        if problem is not None:
            problems.found.append(f"guardrails[{i}].{entry.written('params')}.shadow_of: "
                                  f"{problem}")
    problems.check()
    built.default_on = tuple(n for n, g in built.by_name.items() if g.params.default_on)
    built.callbacks = _plugin_callbacks(plugins)
    return built


def shadow_problem(built: Mapping[str, Guardrail], name: str) -> str | None:
    """What is wrong with guardrail ``name``'s ``shadow_of`` among ``built``, if anything."""
    guardrail = built.get(name)
    target = guardrail.params.shadow_of if guardrail is not None else None
    if target is None:
        return None
    if target == name:
        return f"{name!r} cannot shadow itself; name the guardrail it runs beside"
    if target not in built:
        return (f"{name!r} shadows an unknown guardrail {target!r}; configured guardrails: "
                f"{', '.join(n for n in built if n != name) or 'none'}")
    if built[target].params.shadow_of is not None:
        return (f"{name!r} shadows {target!r}, itself a shadow; a shadow runs beside an "
                f"enforcing guardrail")
    return None


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


_stored_serial = itertools.count(1)


def add_stored(built: GuardrailSet, config: Config, plugins: Plugins, name: str,
               params: dict[str, Any], info: Any) -> None:
    """Build and register one guardrail stored through the API; a problem is a ConfigError
    naming the field under ``litellm_params``."""
    if ":" in str(params.get("guardrail")):
        # Importing a module named in a request would run whatever code that module holds.
        raise ConfigError("litellm_params.guardrail: a module:Class guardrail can only be "
                          "named in the config file")
    # Registered under a name of its own: the guardrail it replaces stays registered until
    # the calls that selected it have ended.
    _add(built, config, plugins, "request", name, params, info, at=("litellm_params",),
         plugin_name=f"guardrail:{name}#{next(_stored_serial)}", bare=True)


def _add(built: GuardrailSet, config: Config, plugins: Plugins, source: str, name: str,
         raw: dict[str, Any], info: Any, *, at: tuple, note: str = "",
         plugin_name: str | None = None, bare: bool = False) -> None:
    """Build and register one guardrail whose params sit at ``at`` in the file; every problem
    ends with ``note``. ``bare``: problems do not name a file (an API request's)."""
    def refuse(where: tuple, problem: str) -> ConfigError:
        return in_source(f"{format_path(where)}: {problem}{note}")

    def in_source(*problems: str) -> ConfigError:
        if bare:
            return ConfigError("; ".join(problems), problems)
        return ConfigError.in_file(source, *problems)

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
        raise in_source(*(f"{problem}{note}" for problem in validation_problems(
            exc, model=cls.Params, prefix=at))) from None
    if not params.mode:
        params.mode = list(cls.default_modes)
    if params.cache_ttl is not None and not cls.cacheable:
        raise refuse((*at, "cache_ttl"),
                     f"guardrail type {registered.name!r} does not declare that its verdict "
                     f"depends only on its input (Guardrail.cacheable), so its verdicts cannot "
                     f"be cached")
    guardrail = cls(name, params)
    guardrail.engine = built.engine
    try:
        plugins.pm.register(guardrail, name=plugin_name or f"guardrail:{name}")
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
