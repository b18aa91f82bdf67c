"""What Aim's ``/fw/v1/analyze`` answers, read strictly: a field of the wrong type is a broken
answer, never a pass. Fields not read here are ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class Message(_Strict):
    role: str
    content: str


class Entity(_Strict):
    """A value Aim anonymized: ``[name]`` in the redacted text stands for ``content``."""

    name: str = Field(min_length=1)
    content: str


class AnalysisResult(_Strict):
    policy_drill_down: dict[str, Any] = Field(default_factory=dict)
    session_entities: list[Entity] = Field(default_factory=list)


class Redaction(_Strict):
    redacted_new_message: Message | None = None
    all_redacted_messages: list[Message] = Field(default_factory=list)


class RequiredAction(_Strict):
    action_type: str | None = None
    detection_message: str | None = None
    chat_redaction_result: Redaction | None = None


class Analysis(_Strict):
    analysis_result: AnalysisResult = Field(default_factory=AnalysisResult)
    required_action: RequiredAction | None = None

    @property
    def action(self) -> str | None:
        return self.required_action.action_type if self.required_action else None

    @property
    def policies(self) -> str:
        return ", ".join(self.analysis_result.policy_drill_down) or "none named"
