"""``lakera_v1``: Lakera Guard's legacy v1 prompt-injection API.

With ``category_thresholds`` a call is refused when a category's score reaches its threshold
(jailbreak checked first); without them, when Lakera flags it.
"""

from __future__ import annotations

from gatehouse import Call, GuardrailBlocked, hookimpl
from gatehouse.guardrails.text import message_role_texts
from pydantic import BaseModel, ConfigDict, Field

from .common import LakeraGuardrail, LakeraParams, VendorReply

# In the order they are checked, so a call over both thresholds reports the first.
CATEGORIES = ("jailbreak", "prompt_injection")


class CategoryThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_injection: float | None = Field(default=None, ge=0, le=1)
    jailbreak: float | None = Field(default=None, ge=0, le=1)


class LakeraV1Params(LakeraParams):
    category_thresholds: CategoryThresholds | None = None


class _Result(VendorReply):
    flagged: bool
    category_scores: dict[str, float] = Field(default_factory=dict)


class _Reply(VendorReply):
    results: list[_Result]


class LakeraV1(LakeraGuardrail):
    Params = LakeraV1Params
    params: LakeraV1Params
    path = "/v1/prompt_injection"

    @hookimpl
    async def pre_call(self, call: Call) -> None:
        messages = [{"role": role, "content": text}
                    for role, text in message_role_texts(call.body) if text]
        if not messages:
            return
        raw, reply = await self.post_checked(self._url, {"input": messages}, self._headers, _Reply)
        violation = self._violation(reply)
        if violation is not None:
            raise GuardrailBlocked(violation, detail={"lakera_ai_response": raw})

    # Nothing is rewritten, so the check is the same whether it runs before or alongside.
    during_call = pre_call

    def _violation(self, reply: _Reply) -> str | None:
        thresholds = self.params.category_thresholds
        if thresholds is None:
            flagged = any(result.flagged for result in reply.results)
            return "Violated content safety policy" if flagged else None
        for category in CATEGORIES:
            limit = getattr(thresholds, category)
            if limit is not None and any(
                    result.category_scores.get(category, 0.0) >= limit
                    for result in reply.results):
                return f"Violated {category} threshold"
        return None
