"""The unsafe-content categories a Llama Guard model judges against.

A category list is plain text that goes into the prompt as it is. Each category starts on a line
``<code>: <name>`` (``S1: Violent Crimes.``, ``O3: Criminal Planning``); lines after it may
describe the category further. The codes are what the model answers with, so they are read out
of the text to check its answers and to name the violated categories to the client.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEADING = re.compile(r"^[ \t]*([A-Za-z]+[0-9]+)[ \t]*:[ \t]*(\S.*?)[ \t.]*$", re.MULTILINE)

# The taxonomy Llama Guard 3 was trained on; its code names are what the model emits.
LLAMA_GUARD_3_TEXT = """\
S1: Violent Crimes.
S2: Non-Violent Crimes.
S3: Sex-Related Crimes.
S4: Child Sexual Exploitation.
S5: Defamation.
S6: Specialized Advice.
S7: Privacy.
S8: Intellectual Property.
S9: Indiscriminate Weapons.
S10: Hate.
S11: Suicide & Self-Harm.
S12: Sexual Content.
S13: Elections.
S14: Code Interpreter Abuse."""


@dataclass(frozen=True, slots=True)
class Categories:
    """A category list: its text for the prompt, and category name by code."""

    text: str
    names: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Categories:
        """Raises ValueError when the text defines no category or a code twice."""
        names: dict[str, str] = {}
        for match in _HEADING.finditer(text):
            code, name = match.groups()
            if code in names:
                raise ValueError(f"category {code} is defined twice")
            names[code] = name
        if not names:
            raise ValueError("no categories found; each category starts on a line like "
                             "'S1: Violent Crimes.'")
        return cls(text.strip(), names)


LLAMA_GUARD_3 = Categories.parse(LLAMA_GUARD_3_TEXT)


def load_categories(value: Any, base_dir: Path | None) -> Categories:
    """Read a category file named in config; a relative path is taken from the config's folder.

    Raises ValueError worded for the config's author.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError("expected the path of a file listing the unsafe content categories")
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read categories file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"categories file {path} is not UTF-8 text") from None
    try:
        return Categories.parse(text)
    except ValueError as exc:
        raise ValueError(f"categories file {path}: {exc}") from None
