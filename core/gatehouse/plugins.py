"""The plugin manager: entry-point discovery, GATEHOUSE_LOAD_PLUGINS, and registries.

Every plugin is a module exposed through the ``gatehouse`` entry-point group, the core's own
built-ins included (they are entry points of the ``gatehouse`` distribution and always load).
``GATEHOUSE_LOAD_PLUGINS`` -- a comma-separated list of distribution or entry-point names --
limits which other plugins load; set it empty to load none of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "gatehouse"
CORE_DISTRIBUTION = "gatehouse-proxy"
LOAD_PLUGINS_ENV = "GATEHOUSE_LOAD_PLUGINS"

hookimpl = pluggy.HookimplMarker("gatehouse")

# The guardrail types (and aliases) of the plugins bundled with gatehouse, by the distribution
# that registers them, so a config naming one that is not loaded can say what would provide it.
BUNDLED_TYPES = {
    "hide-secrets": "gatehouse-secrets", "hide_secrets": "gatehouse-secrets",
    "banned_keywords": "gatehouse-banned-keywords",
    "lakera": "gatehouse-lakera", "lakera_v2": "gatehouse-lakera",
    "lakera_prompt_injection": "gatehouse-lakera", "lakera_v1": "gatehouse-lakera",
    "aporia": "gatehouse-aporia", "aporia_prompt_injection": "gatehouse-aporia",
    "aporio_prompt_injection": "gatehouse-aporia",
    "llamaguard": "gatehouse-llamaguard", "llamaguard_moderations": "gatehouse-llamaguard",
    "openai_moderation": "gatehouse-openai-moderation",
    "openai_moderations": "gatehouse-openai-moderation",
    "llm_guard": "gatehouse-llm-guard", "llmguard_moderations": "gatehouse-llm-guard",
    "aim": "gatehouse-aim", "google_text_moderation": "gatehouse-google-moderation",
}


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid; worded for the operator."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str
    version: str


@dataclass(slots=True)
class Registered:
    """Something a plugin registered by name: a guardrail type or a provider."""

    name: str
    obj: Any
    plugin: PluginInfo
    aliases: tuple[str, ...] = ()


@dataclass
class Plugins:
    """The loaded plugin manager with what the plugins registered."""

    pm: pluggy.PluginManager
    info: dict[str, PluginInfo] = field(default_factory=dict)
    guardrail_types: dict[str, Registered] = field(default_factory=dict)
    providers: dict[str, Registered] = field(default_factory=dict)
    # Installed plugins that were not loaded (GATEHOUSE_LOAD_PLUGINS leaves them out), by
    # entry-point name.
    excluded: dict[str, PluginInfo] = field(default_factory=dict)

    def guardrail_type(self, name: str) -> Registered | None:
        found = self.guardrail_types.get(name)
        if found is None:
            found = next((r for r in self.guardrail_types.values() if name in r.aliases), None)
        return found

    def why_no_type(self, name: str) -> str:
        """Why no loaded plugin offers guardrail type ``name``, and what would."""
        left_out = sorted({info.distribution for info in self.excluded.values()})
        bundled = BUNDLED_TYPES.get(name)
        if bundled in left_out:
            return (f"its plugin {bundled} is installed but not loaded: "
                    f"{LOAD_PLUGINS_ENV} does not name it")
        if bundled is not None:
            return f"its plugin {bundled} (bundled with gatehouse) is not installed"
        if left_out:
            return (f"no loaded plugin offers it; installed but not loaded ({LOAD_PLUGINS_ENV} "
                    f"does not name them): {', '.join(left_out)}")
        return "no installed plugin offers it (pip install the plugin that provides it)"

    def hooks_of(self, plugin_name: str) -> list[str]:
        plugin = self.pm.get_plugin(plugin_name)
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())

    def describe(self) -> list[dict[str, Any]]:
        """What ``gatehouse plugins --json`` and ``GET /-/plugins`` show."""
        out = []
        for name, info in self.info.items():
            out.append({
                "name": name,
                "distribution": info.distribution,
                "version": info.version,
                "hooks": self.hooks_of(name),
                "guardrail_types": [
                    {"name": r.name, "aliases": list(r.aliases), "hooks": _class_hooks(r.obj)}
                    for r in self.guardrail_types.values() if r.plugin.name == name],
                "providers": sorted(
                    r.name for r in self.providers.values() if r.plugin.name == name),
            })
        return out


class _PluginManager(pluggy.PluginManager):
    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        # pluggy reads every attribute while looking for hook implementations; a property
        # (like Guardrail.http) must not be evaluated just because a plugin was registered.
        if isinstance(getattr(type(plugin), name, None), property):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def _class_hooks(cls: type) -> list[str]:
    # pluggy marks implementations with a "<project>_impl" attribute.
    return sorted(name for name in dir(cls)
                  if not isinstance(getattr(cls, name, None), property)
                  and hasattr(getattr(cls, name, None), "gatehouse_impl"))


def new_plugin_manager() -> pluggy.PluginManager:
    pm = _PluginManager("gatehouse")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    extra: Iterable[tuple[str, ModuleType | object]] = (),
    *,
    load: Iterable[str] | None = None,
) -> Plugins:
    """Load installed plugins, then ``extra`` ``(name, plugin)`` pairs (tests, local hooks),
    then collect what they register.

    ``load`` names the distributions or entry points to load besides the core's own; ``None``
    means what ``GATEHOUSE_LOAD_PLUGINS`` says, or everything installed when it is unset.
    """
    plugins = Plugins(new_plugin_manager())
    if load is None:
        wanted = os.environ.get(LOAD_PLUGINS_ENV)
        load = None if wanted is None else [n for n in wanted.split(",")]
    chosen, left_out = _selected_entry_points(load)
    for ep in chosen:
        _register_entry_point(plugins, ep)
    plugins.excluded = {ep.name: _info(ep) for ep in left_out}
    for name, obj in extra:
        plugins.pm.register(obj, name=name)
        plugins.info[name] = PluginInfo(name, getattr(obj, "__name__", name), "")
    try:
        plugins.pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r}: {exc}") from None
    plugins.guardrail_types = _collect(plugins, "register_guardrails", "guardrail type")
    plugins.providers = _collect(plugins, "register_providers", "provider")
    return plugins


def _selected_entry_points(load: Iterable[str] | None
                           ) -> tuple[list[EntryPoint], list[EntryPoint]]:
    """The entry points to load, and the installed ones ``load`` leaves out."""
    allowed = None if load is None else {n.strip() for n in load if n.strip()}
    chosen, left_out = [], []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = _info(ep).distribution
        core = dist == CORE_DISTRIBUTION
        if core or allowed is None or dist in allowed or ep.name in allowed:
            chosen.append(ep)
        else:
            left_out.append(ep)
    return chosen, left_out


def _info(ep: EntryPoint) -> PluginInfo:
    return PluginInfo(ep.name, ep.dist.name if ep.dist else "?",
                      ep.dist.version if ep.dist else "")


def _register_entry_point(plugins: Plugins, ep: EntryPoint) -> None:
    info = _info(ep)
    dist, version = info.distribution, info.version
    if plugins.pm.has_plugin(ep.name):
        # The same distribution seen twice on sys.path (e.g. an editable and a normal install).
        if plugins.info[ep.name].distribution == dist:
            return
        raise PluginError(
            f"plugin name {ep.name!r} is used by both {plugins.info[ep.name].distribution} "
            f"and {dist}"
        )
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
        raise PluginError(
            f"plugin {ep.name!r} from distribution {dist} {version} failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        plugins.pm.register(obj, name=ep.name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {ep.name!r} from distribution {dist}: {exc}") from None
    plugins.info[ep.name] = info


def _collect(plugins: Plugins, hook_name: str, what: str) -> dict[str, Registered]:
    found: dict[str, Registered] = {}
    hook = getattr(plugins.pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):  # registration order
        info = plugins.info.get(impl.plugin_name) or PluginInfo(impl.plugin_name, "?", "")

        def register(name: str, obj: Any, aliases: Iterable[str] = (), _info=info) -> None:
            for taken in (name, *aliases):
                clash = found.get(taken) or next(
                    (r for r in found.values() if taken in r.aliases), None
                )
                if clash is not None:
                    raise PluginError(
                        f"{what} {taken!r} is registered by both {clash.plugin.distribution} "
                        f"(plugin {clash.plugin.name!r}) and {_info.distribution} "
                        f"(plugin {_info.name!r})"
                    )
            found[name] = Registered(name, obj, _info, tuple(aliases))

        impl.function(register=register)
    return found
