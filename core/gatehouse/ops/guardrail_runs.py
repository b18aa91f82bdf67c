"""What metrics and traces know of one call's guardrail runs: the one seam between them and
the guardrail engine's record of a call.

Today the engine keeps only each guardrail's verdict (``Call.verdicts``); the modes a guardrail
ran in come from the call's selection, and no duration is known. When the engine keeps a
``guardrail_information`` entry per run (name, mode, status, start, duration), ``runs()`` reads
those instead and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ..guardrails.call import Call
    from ..guardrails.selection import Selection

# The engine's verdicts as LiteLLM's guardrail_status names them.
STATUS = {"passed": "success", "blocked": "guardrail_intervened",
          "failed_open": "guardrail_failed_to_respond",
          "failed_closed": "guardrail_failed_to_respond"}
# Selection fields per hook mode, in the order a call meets them.
MODES = (("pre_call", "pre_call"), ("during_call", "during_call"), ("post_call", "post_call"),
         ("post_call_stream", "post_call"), ("post_call_assembled", "post_call"))


@dataclass(frozen=True, slots=True)
class GuardrailRun:
    name: str
    mode: str
    # LiteLLM's guardrail_status: success, guardrail_intervened, guardrail_failed_to_respond.
    status: str
    # The engine's own verdict: passed, blocked, failed_open, failed_closed.
    verdict: str
    start: float | None = None
    duration: float | None = None

    @property
    def failed(self) -> bool:
        return self.status == "guardrail_failed_to_respond"


def runs(call: Call, selection: Selection) -> Iterator[GuardrailRun]:
    if not call.verdicts:
        return
    modes: dict[str, str] = {}
    for field, mode in MODES:
        for impl in getattr(selection, field):
            modes.setdefault(impl.name, mode)
    for name, verdict in call.verdicts.items():
        yield GuardrailRun(name, modes.get(name, "pre_call"), STATUS.get(verdict, verdict),
                           verdict)
