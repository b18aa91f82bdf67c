"""What Presidio's analyzer found in a text, and which of it counts under the guardrail's
thresholds, deny list and allow list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel

from .params import PresidioParams


class Detection(BaseModel):
    """One analyzer result. Other fields Presidio sends (``analysis_explanation``,
    ``recognition_metadata``) are kept and passed on to the anonymizer as they came."""

    model_config = ConfigDict(extra="allow", strict=True)

    entity_type: str
    start: int
    end: int
    score: float | int

    def at(self, start: int, end: int) -> dict[str, Any]:
        """This result as the anonymizer is sent it, moved to ``start``..``end``."""
        return {**self.model_dump(), "start": start, "end": end}


class Detections(RootModel[list[Detection]]):
    model_config = ConfigDict(strict=True)


class Policy:
    """The guardrail's rules over detections, from its params."""

    def __init__(self, params: PresidioParams) -> None:
        self.actions = params.pii_entities_config or {}
        self.thresholds = params.presidio_score_thresholds
        self.denied = frozenset(params.presidio_entities_deny_list)
        self.allowed = frozenset(p.casefold() for p in params.presidio_phrase_allow_list)

    def counted(self, text: str, found: list[Detection]) -> list[Detection]:
        """The detections that count, in text order."""
        return sorted((d for d in found if self._counts(text, d)), key=lambda d: (d.start, -d.end))

    def _counts(self, text: str, d: Detection) -> bool:
        threshold = self.thresholds.get(d.entity_type, self.thresholds.get("ALL"))
        return (d.entity_type not in self.denied
                and (threshold is None or d.score >= threshold)
                and text[d.start:d.end].casefold() not in self.allowed)

    def blocked(self, found: list[Detection]) -> str | None:
        """The first entity type found whose action is ``BLOCK``."""
        return next((d.entity_type for d in found if self.actions.get(d.entity_type) == "BLOCK"),
                    None)


def disjoint(found: list[Detection]) -> list[tuple[int, int, str]]:
    """``(start, end, entity type)`` covering every detection (in text order) with no two
    overlapping: an overlap joins the spans under the first one's type, so no detected character
    is left out of a mask."""
    spans: list[tuple[int, int, str]] = []
    for d in found:
        if spans and d.start < spans[-1][1]:
            start, end, entity = spans[-1]
            spans[-1] = (start, max(end, d.end), entity)
        else:
            spans.append((d.start, d.end, d.entity_type))
    return spans
