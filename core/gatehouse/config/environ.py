"""``os.environ/NAME`` references: answered while loading from the environment or, with
``general_settings.key_management_system``, from the key manager it names (for the names it
hosts), once per name. A reference that cannot be answered is a problem naming the field and
the variable, never a value."""

from __future__ import annotations

import os
import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..secret_managers import MANAGERS, SecretManagerError, open_manager
from .problems import ConfigError, format_path

ENV_PREFIX = "os.environ/"


class KeyManagementSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The os.environ/ names read from the key manager; unset: every one.
    hosted_keys: list[str] | None = None
    # Generated keys written to the manager: not done by gatehouse (warned).
    store_virtual_keys: bool = False
    prefix_for_stored_virtual_keys: str = "litellm/"
    # write_only: the manager is written, never read (os.environ/ reads the environment).
    access_mode: typing.Literal["read_only", "write_only", "read_and_write"] = "read_only"


SecretSystem = typing.Literal[tuple(MANAGERS)]  # type: ignore[valid-type]
# LiteLLM's other managers: refused by name, so the operator learns why rather than only
# what is allowed.
UNSUPPORTED_SYSTEMS = ("azure_key_vault", "google_secret_manager", "google_kms")


class KeyManagement(BaseModel):
    """Where ``os.environ/`` references are read from. Read from the raw file, before the rest
    of ``general_settings``, since every reference depends on it."""

    model_config = ConfigDict(extra="ignore")

    key_management_system: SecretSystem | None = None
    key_management_settings: KeyManagementSettings = Field(
        default_factory=KeyManagementSettings)

    @field_validator("key_management_system", mode="before")
    @classmethod
    def _supported(cls, system: Any) -> Any:
        if system in UNSUPPORTED_SYSTEMS:
            raise ValueError(
                f"{system} is not supported by gatehouse, which reads secrets from "
                f"{', '.join(MANAGERS)} only; keep these secrets in the environment or "
                f"move them to one of those")
        return system

    def hosts(self, name: str) -> bool:
        """Whether ``os.environ/<name>`` is read from the key manager."""
        settings = self.key_management_settings
        return (self.key_management_system is not None and settings.access_mode != "write_only"
                and (settings.hosted_keys is None or name in settings.hosted_keys))


# A value still holding this is a KMS ciphertext the CLI did not decrypt (no USE_AWS_KMS).
KMS_VALUE_PREFIX = "aws_kms/"


def resolve_references(data: dict[str, Any], source: str) -> tuple[Any, dict[str, str]]:
    """The file's ``data`` with every ``os.environ/NAME`` answered, after its
    ``environment_variables`` have filled in the variables the environment lacks; and the
    references that could not be answered, left as written, as path -> problem."""
    for name, value in (data.get("environment_variables") or {}).items():
        os.environ.setdefault(str(name), str(value))
    unset: dict[str, str] = {}
    return _resolve_env(data, (), unset, _secret_reader(data, source)), unset


def _secret_reader(data: dict[str, Any], source: str) -> Callable[[str], str | None]:
    """How ``os.environ/NAME`` is read: from the key manager ``general_settings`` names, for
    the names it hosts, else from the environment. A manager that cannot be set up stops the
    load here: every reference it hosts would fail."""
    general = data.get("general_settings")
    try:
        chosen = KeyManagement.model_validate(general if isinstance(general, dict) else {})
    except ValidationError:  # refused with the rest of general_settings
        chosen = KeyManagement()
    system = chosen.key_management_system
    if system is None or not any(map(chosen.hosts, _env_names(data))):
        return os.environ.get
    try:
        manager = open_manager(system)
    except SecretManagerError as exc:
        raise ConfigError.in_file(
            source, f"general_settings.key_management_system: {system}: {exc}") from None
    read: dict[str, str | None] = {}

    def reader(name: str) -> str | None:
        if not chosen.hosts(name):
            return os.environ.get(name)
        if name not in read:
            try:
                read[name] = manager.read(name)
            except SecretManagerError as exc:
                raise SecretManagerError(f"cannot read {name} from {system}: {exc}") from None
        if read[name] is None:
            raise SecretManagerError(f"{system} has no secret {name}")
        return read[name]

    return reader


def _env_names(value: Any) -> Iterator[str]:
    """The NAME of every ``os.environ/NAME`` in ``value``."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        yield value[len(ENV_PREFIX):]
    elif isinstance(value, (dict, list)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _env_names(item)


def _resolve_env(value: Any, path: tuple, unset: dict[str, str],
                 read: Callable[[str], str | None]) -> Any:
    """``value`` with every ``os.environ/NAME`` replaced by what ``read(NAME)`` gives; the
    ones it cannot give are left as they are and noted in ``unset`` (path -> problem)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        try:
            found = read(name)
        except SecretManagerError as exc:
            unset[format_path(path)] = str(exc)
            return value
        if found is None:
            unset[format_path(path)] = f"environment variable {name} is not set"
            return value
        if found.startswith(KMS_VALUE_PREFIX):
            unset[format_path(path)] = (f"{name} holds an {KMS_VALUE_PREFIX} ciphertext; set "
                                        f"USE_AWS_KMS=True to have it decrypted at start")
            return value
        return found
    if isinstance(value, dict):
        return {k: _resolve_env(v, (*path, k), unset, read) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*path, i), unset, read) for i, v in enumerate(value)]
    return value
