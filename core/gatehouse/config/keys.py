"""The keys a file may give a model: its fields' names and their aliases (LiteLLM's section names
are accepted beside ours), and the key a loaded model was given each field under."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, PrivateAttr, model_validator
from pydantic.fields import FieldInfo


class AliasedModel(BaseModel):
    """A part of the file whose fields may be given under an alias, refusing unknown keys unless
    it says otherwise; it remembers which key the file used, for :meth:`written`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # The key each field was given under (``litellm_params`` or ``params``), so that problems
    # found after loading point where the file says.
    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                model._written[name] = next(
                    (key for key in accepted_keys(name, info) if key in data), name)
        return model

    def written(self, field: str) -> str:
        """The key ``field`` was given under, or its own name."""
        return self._written.get(field, field)


def accepted_keys(name: str, info: FieldInfo) -> list[str]:
    """The keys a model field is read from: its name and its alias choices."""
    alias = info.validation_alias
    choices = [c for c in alias.choices if isinstance(c, str)] \
        if isinstance(alias, AliasChoices) else []
    return list(dict.fromkeys([*choices, name]))


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may give ``model``; excluded fields (``base_dir``) are not read from it."""
    return [key for name, info in model.model_fields.items() if not info.exclude
            for key in accepted_keys(name, info)]


def keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys accepted by the model found at ``loc`` inside ``model``."""
    for part in loc:
        if isinstance(part, int):
            continue
        info = next((i for n, i in model.model_fields.items() if part in accepted_keys(n, i)),
                    None)
        inner = _model_in(info.annotation) if info is not None else None
        if inner is None:
            return []
        model = inner
    return model_keys(model)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in a field's type: ``X``, ``list[X]``, ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None),
                None)
