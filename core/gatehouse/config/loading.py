"""Reading a config: the YAML file or a mapping, its references answered, validated, its unknown
keys checked; every mistake found refused together as one :class:`ConfigError`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .environ import resolve_references
from .file import Config
from .problems import ConfigError, validation_problems
from .unknown_keys import check_sections


def load_config(path: str | os.PathLike[str]) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return config_from_dict(data or {}, source=str(path), base_dir=path.resolve().parent)


def config_from_dict(
    data: Any, *, source: str = "<config>", base_dir: Path | None = None
) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {_kind(data)}")
    data, unset = resolve_references(data, source)
    problems = [f"{where}: {problem}" for where, problem in unset.items()]
    try:
        config = Config.model_validate({**data, "base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        # A value still naming an unset variable is already reported as that.
        problems += [problem for problem in validation_problems(exc, model=Config)
                     if not problem.startswith(tuple(f"{where}:" for where in unset))]
    else:
        problems += check_sections(config, source)
    if problems:
        raise ConfigError.in_file(source, *problems)
    return config


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"
