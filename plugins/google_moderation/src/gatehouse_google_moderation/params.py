"""The guardrail's params, named as LiteLLM's settings so the ``callbacks:`` shorthand picks
them up unchanged: a global confidence threshold, one per category, and the endpoint.

LiteLLM reads ``<category>_confidence_threshold`` for every category, while its docs spell most
of them ``<category>_threshold``; both are accepted (one at a time).
"""

from __future__ import annotations

from typing import Any

from gatehouse import GuardrailParams
from pydantic import AliasChoices, Field, create_model, field_validator, model_validator

# Google's moderation categories, as their names read once normalized (see guardrail.py).
CATEGORIES = ("toxic", "insult", "profanity", "derogatory", "sexual", "death_harm_and_tragedy",
              "violent", "firearms_and_weapons", "public_safety", "health",
              "religion_and_belief", "illicit_drugs", "war_and_conflict", "politics", "finance",
              "legal")
DEFAULT_THRESHOLD = 0.8
DEFAULT_API_BASE = "https://language.googleapis.com"


def threshold_field(category: str) -> str:
    return f"{category}_confidence_threshold"


def _spellings(category: str) -> tuple[str, str]:
    return threshold_field(category), f"{category}_threshold"


_Thresholds = create_model(  # type: ignore[call-overload]
    "_Thresholds", __base__=GuardrailParams,
    **{threshold_field(c): (float | None, Field(default=None, ge=0, le=1,
                                                validation_alias=AliasChoices(*_spellings(c))))
       for c in CATEGORIES})


class GoogleModerationParams(_Thresholds):  # type: ignore[misc, valid-type]
    google_moderation_confidence_threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=1)
    # Gatehouse's own key: a private endpoint, or a test's fake.
    google_moderation_api_base: str = DEFAULT_API_BASE

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for category in CATEGORIES:
                both = _spellings(category)
                if all(data.get(key) is not None for key in both):
                    raise ValueError(f"{both[0]} and {both[1]} are the same setting; keep one")
        return data

    @field_validator("google_moderation_api_base")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    def thresholds(self) -> dict[str, float]:
        """Each category's threshold, the global one where none is set."""
        default = self.google_moderation_confidence_threshold
        return {c: default if (t := getattr(self, threshold_field(c))) is None else t
                for c in CATEGORIES}
