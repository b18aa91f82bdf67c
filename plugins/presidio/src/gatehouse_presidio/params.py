"""The ``presidio`` guardrail's config: where Presidio runs, what to do with each entity, and
which side of a call is checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import orjson
from gatehouse import GuardrailParams
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

# Where each service's base comes from when config leaves it out.
BASES = {"presidio_analyzer_api_base": "PRESIDIO_ANALYZER_API_BASE",
         "presidio_anonymizer_api_base": "PRESIDIO_ANONYMIZER_API_BASE"}


def service_base(value: str) -> str:
    """A base as Presidio's other clients read it: ``http://`` when no scheme is given, and
    always a trailing ``/`` so the route is added to its path."""
    if "://" not in value:
        value = f"http://{value}"
    return value if value.endswith("/") else f"{value}/"


class PresidioParams(GuardrailParams):
    # Read from the environment when left out: validated even when not given.
    presidio_analyzer_api_base: str = Field(default="", validate_default=True)
    presidio_anonymizer_api_base: str = Field(default="", validate_default=True)
    presidio_language: str = "en"
    #: Entity type -> what a detection of it does. Its keys are the entities asked for.
    pii_entities_config: dict[str, Literal["MASK", "BLOCK"]] | None = None
    #: Entity type (or ``ALL``) -> the lowest score that counts; the type's own wins.
    presidio_score_thresholds: dict[str, float] = Field(default_factory=dict)
    presidio_entities_deny_list: list[str] = Field(default_factory=list)
    #: Text that is never an entity, matched whole and case-insensitively.
    presidio_phrase_allow_list: list[str] = Field(default_factory=list)
    #: A JSON file of Presidio ad-hoc recognizers, read once at start: its contents.
    presidio_ad_hoc_recognizers: list[dict[str, Any]] | None = None
    #: None: the request in pre_call / during_call, the reply when post_call is configured.
    presidio_filter_scope: Literal["input", "output", "both"] | None = None
    #: Mask with numbered tokens and put the originals back into the reply.
    output_parse_pii: bool = False
    #: Mask PII in the reply as well.
    apply_to_output: bool = False

    _checks_output: bool = PrivateAttr(default=False)

    @field_validator(*BASES, mode="before")
    @classmethod
    def _base(cls, value: Any, info: ValidationInfo) -> Any:
        variable = BASES[info.field_name]
        value = value or os.environ.get(variable)
        if not value:
            # A "missing" error: the message alone, without the empty value it was given.
            raise PydanticCustomError("missing", f"Missing `{variable}` from environment")
        return service_base(value) if isinstance(value, str) else value

    @field_validator("presidio_score_thresholds")
    @classmethod
    def _scores(cls, value: dict[str, float]) -> dict[str, float]:
        wrong = sorted(k for k, v in value.items() if not 0 <= v <= 1)
        if wrong:
            raise ValueError(f"a score threshold is between 0 and 1: {', '.join(wrong)}")
        return value

    @field_validator("presidio_ad_hoc_recognizers", mode="before")
    @classmethod
    def _read_recognizers(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, (str, Path)):
            return value
        path = Path(value)
        base = (info.context or {}).get("base_dir")
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        try:
            raw = path.read_bytes()
        except OSError:
            raise ValueError(f"File not found. file_path={value}") from None
        try:
            recognizers = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{value} is not JSON: {exc}") from None
        if not isinstance(recognizers, list):
            raise ValueError(f"{value} must hold a JSON array of recognizers")
        return recognizers

    @model_validator(mode="after")
    def _output_modes(self) -> PresidioParams:
        if not self.mode:
            self.mode = ["pre_call"]
        scope = self.presidio_filter_scope
        self._checks_output = (self.apply_to_output or "post_call" in self.mode
                               if scope is None else scope != "input")
        # Un-masking and output checks happen after the reply: they need post_call.
        if (self.output_parse_pii or self._checks_output) and "post_call" not in self.mode:
            self.mode.append("post_call")
        return self

    @property
    def checks_input(self) -> bool:
        return self.presidio_filter_scope != "output"

    @property
    def checks_output(self) -> bool:
        return self._checks_output
