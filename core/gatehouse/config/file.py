"""The whole file as one model: its sections, and what they answer together (the callbacks named
in either place, email, paths relative to the file)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, ConfigDict, Field

from .general_settings import GeneralSettings
from .guardrails import LITELLM_LOGGING_CALLBACKS, GuardrailEntry
from .keys import AliasedModel
from .model_list import ModelEntry
from .settings import RouterSettings, Settings


class Config(AliasedModel):
    """The whole file."""

    # Unknown top-level sections are LiteLLM's (warned about, ignored) or typos (refused):
    # see unknown_keys.check_sections.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model_list: list[ModelEntry] = Field(default_factory=list)
    guardrails: list[GuardrailEntry] = Field(default_factory=list)
    callbacks: list[str] = Field(default_factory=list)
    settings: Settings = Field(default_factory=Settings,
                              validation_alias=AliasChoices("settings", "litellm_settings"))
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    # The folder relative paths in the config are resolved against.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @property
    def sends_email(self) -> bool:
        """Whether the config turns on email notifications, as either LiteLLM version asks."""
        return self.wants("smtp_email") or "email" in self.general_settings.alerting

    @property
    def all_callbacks(self) -> list[str]:
        return [name for _, name in self.callback_entries()]

    def callback_entries(self, *, logging_only: bool = False) -> list[tuple[str, str]]:
        """``(where, name)`` of each callback named in ``callbacks`` or ``settings.callbacks``,
        the first place a name appears; LiteLLM's logging callbacks, which gatehouse ignores,
        only when ``logging_only``."""
        places = [*((f"callbacks[{i}]", name) for i, name in enumerate(self.callbacks)),
                  *((f"{self.written('settings')}.callbacks[{i}]", name)
                    for i, name in enumerate(self.settings.callbacks))]
        first: dict[str, str] = {}
        for where, name in places:
            first.setdefault(name, where)
        return [(where, name) for name, where in first.items()
                if (name in LITELLM_LOGGING_CALLBACKS) == logging_only]

    def wants(self, *callbacks: str) -> bool:
        """Whether ``callbacks`` names any of these logging callbacks."""
        return any(name in callbacks for _, name in self.callback_entries(logging_only=True))

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path
