"""One way of finding one type of secret: a compiled pattern, what to make of its matches, and
what the scanner may check first to skip it cheaply on text that cannot match."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: ``accept(match, value)``: whether a match is really a secret (a format check, a heuristic).
Accept = Callable[["re.Match[str]", str], bool]


@dataclass(frozen=True, slots=True, eq=False)
class Detector:
    secret_type: str
    pattern: re.Pattern[str]
    #: Groups that may hold the secret, in order; the first that took part wins. 0 is the match.
    groups: tuple[int, ...] = (0,)
    #: Lowercase literals, one of which every match contains (on its first line). The scanner
    #: runs the detector only where the lowercased text holds one. A detector with neither
    #: triggers nor a gate runs on every text.
    triggers: tuple[str, ...] = ()
    #: Matched on the lowercased text right after a trigger; where it does not match, that
    #: trigger does not wake the detector. It must match wherever a match of ``pattern`` could
    #: run through the trigger: a cheap necessary condition, e.g. "followed by '=' or ':'".
    after_trigger: re.Pattern[str] | None = None
    #: For patterns without a literal common to every match: a cheap pattern starting with a
    #: literal (the engine skips ahead to it) with a hit on the line of every match.
    gate: re.Pattern[str] | None = None
    #: Matches may span lines; once woken the detector runs on the whole text, not the line.
    multiline: bool = False
    accept: Accept | None = None

    @property
    def always(self) -> bool:
        return not self.triggers and self.gate is None
