"""Credential assignments: ``API_KEY = '...'``, ``password: ...``, ``"secret": "..."``.

detect-secrets' KeywordDetector picks one of several regex sets by file type and needs quotes
around the value for anything that is not a config file. Chat text has no file type and people
paste ``openai_api_key=sk-...`` without quotes, so this detector takes the plugin's keyword
denylist and accepts quoted and unquoted values alike. An unquoted value must hold a digit or a
symbol and must not read as a code reference: ``password: required``, ``pw: str`` and
``password = request.form[...]`` are everywhere in chat and are not secrets.
"""

from __future__ import annotations

import re

from detect_secrets.plugins.keyword import DENYLIST, KeywordDetector

from .detector import Detector

# Token names people assign secrets to that the plugin's denylist lacks, and a literal each of
# their matches contains. A bare "token" is left out on purpose: "max_tokens: 512" is in every
# other prompt about LLMs.
EXTRA_KEYWORDS = ("passphrase", "(?:access|auth|api|bearer|refresh|session|client|bot)_?token")
EXTRA_TRIGGERS = ("passphrase", "token")

_QUOTED_GROUPS = (1, 2, 3)
_UNQUOTED_GROUP = 4

# Repetitions that can fail are bounded, so that text crafted with thousands of keywords in a
# row costs a bounded amount per keyword rather than a scan of the rest of the line each.
_AFTER_KEYWORD = (
    r"[A-Za-z0-9_]{0,64}"  # the keyword may be part of a longer name: db_password, secret_key
    r"['\"\]]{0,2}"  # the closing quote or bracket of a JSON key or a subscript
    r"[ \t]{0,16}(?::[^=\n]{1,60}(?==))?"  # a type annotation: pw: str = ...
    r"(?:=>|:=|===?|!==?|=|:)[ \t]{0,16}"
    r"(?:'([^'\n]{1,512})'|\"([^\"\n]{1,512})\"|`([^`\n]{1,512})`"
    # Unquoted: up to a space, quote or separator; a final '.', ':' or bracket ends a sentence
    # or an expression, not the value. '&' stays in: passwords hold it more often than a query
    # string follows a password.
    r"|([^\s'\"`,;]*[^\s'\"`,;.:)\]}]))"
)

# After a keyword in the lowercased text: the rest of the name, then an assignment or comparison.
# Most mentions of "password" or "token" in prose fail this at once.
_ASSIGNED = re.compile(r"[a-z0-9_]{0,64}['\"\]]{0,2}[ \t]{0,16}[=:!]")

_MASK = frozenset("*xX.#-_• ")
_PLACEHOLDER_START = tuple("${<%[")
# Letters only read as words or names (password: required, pw = DB_PASSWORD, secret: null);
# dotted names are attribute access (settings.API_KEY).
_WORDLIKE = re.compile(r"[A-Za-z_]+|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_REFERENCE_CHARS = frozenset("()[]{}")


def keyword_detectors(plugin: KeywordDetector) -> list[Detector]:
    keywords = (*DENYLIST, *EXTRA_KEYWORDS)
    pattern = re.compile(f"(?:{'|'.join(keywords)}){_AFTER_KEYWORD}", re.IGNORECASE)
    exclude = plugin.keyword_exclude

    def accept(match: re.Match[str], value: str) -> bool:
        if exclude is not None and exclude.search(_line_of(match)):
            return False
        if match.group(_UNQUOTED_GROUP) is None:
            return _plausible_quoted(value)
        return _plausible_unquoted(value)

    return [Detector(plugin.secret_type, pattern, groups=(*_QUOTED_GROUPS, _UNQUOTED_GROUP),
                     triggers=_triggers(), after_trigger=_ASSIGNED, accept=accept)]


def _triggers() -> tuple[str, ...]:
    """Literal triggers for the denylist, or none (run everywhere) if an entry is more than
    letters with optional underscores -- a later detect-secrets may add such a keyword."""
    literals = set(EXTRA_TRIGGERS)
    for keyword in DENYLIST:
        variants = {keyword.replace("_?", ""), keyword.replace("_?", "_")}
        if any(re.escape(v) != v for v in variants):
            return ()
        literals |= variants
    return tuple(sorted(literals))


def _line_of(match: re.Match[str]) -> str:
    text = match.string
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:] if end < 0 else text[start:end]


def is_mask(value: str) -> bool:
    """Whether ``value`` only stands in for a secret: ``****``, ``xxxx``, ``•••``."""
    return set(value) <= _MASK


def _plausible_quoted(value: str) -> bool:
    return not (value.startswith(_PLACEHOLDER_START) or is_mask(value))


def _plausible_unquoted(value: str) -> bool:
    return not (
        len(value) < 4
        or not _plausible_quoted(value)
        or value.startswith(("/", "~/", "./", "@", "http://", "https://"))
        or not _REFERENCE_CHARS.isdisjoint(value)
        or _WORDLIKE.fullmatch(value) is not None
    )
