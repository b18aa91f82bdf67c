"""How a config mistake is reported: :class:`ConfigError`, naming the field path as the file
spells it and what was expected, and :class:`Problems`, the mistakes of a file gathered from
every part that finds one and refused together, so one run names them all."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence

from pydantic import BaseModel, ValidationError

from .keys import keys_at


class ConfigError(Exception):
    """A config problem, already worded for the person who wrote the file.

    ``problems`` holds its mistakes one by one as ``"<where>: <what>"``, without the file's
    name, so mistakes found by different parts can be refused together.
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = tuple(problems) if problems is not None else (message,)

    @classmethod
    def in_file(cls, source: str, *problems: str) -> ConfigError:
        """One error naming each problem of ``source``, one a line."""
        if len(problems) == 1:
            return cls(f"{source}: {problems[0]}", problems)
        listed = "".join(f"\n  {problem}" for problem in problems)
        return cls(f"{source}: {len(problems)} problems:{listed}", problems)


class Problems:
    """Config mistakes gathered from every part that finds one, refused as one ConfigError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    @contextlib.contextmanager
    def gather(self) -> Iterator[None]:
        """Note the ConfigError the block raises and carry on after it."""
        try:
            yield
        except ConfigError as exc:
            self.found.extend(exc.problems)

    def check(self) -> None:
        if self.found:
            raise ConfigError.in_file(self.source, *self.found)


def validation_problems(exc: ValidationError, *, model: type[BaseModel],
                        prefix: tuple = ()) -> list[str]:
    """One ``"<where>: <what>"`` per error pydantic found validating ``model``, whose data sits
    at ``prefix`` in the file."""
    problems = []
    for err in exc.errors():
        where = format_path((*prefix, *err["loc"]))
        if err["type"] == "extra_forbidden":
            known = keys_at(model, err["loc"][:-1])
            problems.append(f"{where}: {unknown_key(str(err['loc'][-1]), known)}")
            continue
        got = err.get("input")
        detail = err["msg"]
        leaf = str(err["loc"][-1]).lower() if err["loc"] else ""
        # Echo the offending value to help, unless the field could hold a secret.
        secretish = any(word in leaf for word in ("key", "secret", "password", "token"))
        if err["type"] != "missing" and not isinstance(got, (dict, list)) and not secretish:
            detail += f" (got {got!r})"
        problems.append(f"{where}: {detail}")
    return problems


def unknown_key(key: str, known: Collection[str]) -> str:
    """What to say about ``key`` where only ``known`` keys are accepted: the one meant, when it
    is a slip of the keyboard away, else the choices. Values are never echoed: the key may be a
    misspelt ``api_key``."""
    near = did_you_mean(key, known)
    if near is not None:
        return f"unknown key; did you mean `{near}`?"
    return f"unknown key; expected one of: {', '.join(sorted(known))}" if known \
        else "unknown key"


def did_you_mean(key: str, known: Collection[str]) -> str | None:
    """The known key an unknown ``key`` is at most two edits from (the nearest), if any; a
    difference of case alone counts as a slip too."""
    distance, near = min(((_edits(key.lower(), k.lower()), k) for k in known),
                         default=(NEAR_MISS + 1, None))
    return near if distance <= NEAR_MISS else None


# A key this many edits (or fewer) from a known one is taken for a typo of it.
NEAR_MISS = 2


def _edits(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment): inserting, deleting or replacing
    a character, or swapping two neighbours, is one edit each."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        row = [i]
        for j, other in enumerate(b, 1):
            cost = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                cost = min(cost, before[j - 2] + 1)
            row.append(cost)
        before, previous = previous, row
    return previous[-1]


def format_path(loc: tuple) -> str:
    """A field's place in the file as its problems name it, e.g. ``model_list[0].params``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"
