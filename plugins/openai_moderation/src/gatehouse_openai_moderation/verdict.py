"""Reading a ``/moderations`` answer and what it flagged."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    # Strict so ``"flagged": "false"`` is a broken answer, never a pass.
    model_config = ConfigDict(strict=True)


class Result(_Strict):
    flagged: bool
    # omni-moderation answers null for a category it did not assess.
    categories: dict[str, bool | None] = Field(default_factory=dict)
    category_scores: dict[str, float] = Field(default_factory=dict)


class Moderation(_Strict):
    results: list[Result] = Field(min_length=1)

    @property
    def flagged(self) -> bool:
        """The verdict on the one input sent: the first result's."""
        return self.results[0].flagged

    def violations(self) -> dict[str, Any]:
        """The flagged categories and their scores, as the block's ``moderation_result``."""
        first = self.results[0]
        violated = [name for name, hit in first.categories.items() if hit]
        return {"violated_categories": violated,
                "category_scores": {name: first.category_scores[name] for name in violated
                                    if name in first.category_scores}}

