"""What the gateway under test runs with: one model routed to the bench upstream, and the
``banned_keywords`` and ``hide-secrets`` guardrails wherever an installed plugin provides them.

The one bench module that imports gatehouse, so the benches depend on the core's layout in one
place only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Sequence

import yaml
from gatehouse.plugins import (
    CORE_DISTRIBUTION,
    ENTRY_POINT_GROUP,
    LOAD_PLUGINS_ENV,
    PluginError,
    load_plugins,
)

BANNED_KEYWORD_COUNT = 100


@dataclass
class Guardrails:
    """The guardrail entries for the gateway config, the plugins that provide them, and what to
    tell the reader about what is on and what is not."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    entry_points: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def plugins_env(self) -> dict[str, str]:
        """The gateway's environment loads only these plugins, so another installed plugin's
        global callbacks cannot change what is measured."""
        return {LOAD_PLUGINS_ENV: ",".join(self.entry_points)}

    def describe(self) -> str:
        parts = []
        for entry in self.entries:
            params = entry["params"]
            sizes = [f"{len(v)} {k}" for k, v in params.items()
                     if isinstance(v, list) and k != "mode"]
            parts.append(f"{entry['guardrail_name']} ({'+'.join(params['mode'])}"
                         f"{', ' + ', '.join(sizes) if sizes else ''})")
        return ", ".join(parts) or "none"


def find_guardrails() -> Guardrails:
    """Configure whichever of ``banned_keywords`` and ``hide-secrets`` an installed plugin
    provides. Each plugin is loaded on its own, so one that fails to import (they are being
    written alongside this bench) costs only its own guardrail."""
    found = Guardrails()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None and ep.dist.name == CORE_DISTRIBUTION:
            continue
        try:
            plugins = load_plugins(load=[ep.name])
        except PluginError as exc:
            found.notes.append(f"plugin {ep.name!r} not used: {exc}")
            continue
        banned = plugins.guardrail_type("banned_keywords")
        if banned is not None and "banned_keywords" not in found.on:
            keywords_field = next((name for name in banned.obj.Params.model_fields
                                   if "keyword" in name), None)
            if keywords_field is None:
                found.notes.append(f"banned_keywords from {ep.name!r} not used: its params "
                                   f"have no keyword list field")
            else:
                found.entries.append({"guardrail_name": "banned_keywords", "params": {
                    "guardrail": banned.name, "mode": ["pre_call", "post_call"],
                    "default_on": True,
                    keywords_field: [f"competitor-{i:03d}" for i in range(BANNED_KEYWORD_COUNT)],
                }})
                found.on.append("banned_keywords")
                found.entry_points.append(ep.name)
        secrets = plugins.guardrail_type("hide-secrets")
        if secrets is not None and "hide-secrets" not in found.on:
            found.entries.append({"guardrail_name": "hide-secrets", "params": {
                "guardrail": secrets.name, "mode": ["pre_call"], "default_on": True}})
            found.on.append("hide-secrets")
            if ep.name not in found.entry_points:
                found.entry_points.append(ep.name)
    for wanted in ("banned_keywords", "hide-secrets"):
        if wanted not in found.on:
            found.notes.append(f"{wanted}: no installed plugin provides it; running without")
    return found


def write_config(workdir: Path, model: str, upstream_port: int, guardrails: Guardrails,
                 master_key: str | None = None, callbacks: Sequence[str] = (),
                 name: str = "config.yaml") -> Path:
    """With ``master_key``, virtual keys are on, kept in a SQLite file in ``workdir``;
    ``callbacks`` (prometheus, otel) go in ``litellm_settings``."""
    config: dict[str, Any] = {
        "model_list": [{"model_name": model, "params": {
            "model": f"openai/{model}", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
            "api_key": "sk-bench-not-a-secret"}}],
        "guardrails": guardrails.entries,
    }
    if master_key is not None:
        config["general_settings"] = {"master_key": master_key,
                                      "database_path": str(workdir / "gatehouse.db")}
    if callbacks:
        config["litellm_settings"] = {"callbacks": list(callbacks)}
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
