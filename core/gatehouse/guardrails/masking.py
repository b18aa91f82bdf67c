"""Credentials as the gateway shows them, on every route, page and log line: which names may
hold one (:func:`looks_secret`), the one way a value is masked for display (:func:`mask`), and
a URL with its credentials hidden (:func:`masked_url`).
"""

from __future__ import annotations

import urllib.parse

# A field whose name has one of these parts may hold a credential.
SECRET_PARTS = frozenset({"key", "token", "secret", "password", "auth", "credential", "access",
                          "private", "certificate", "fingerprint", "tenancy", "authorization",
                          "cookie"})

MASK = "****"
SHOWN = 4
# A value shows any of itself only when at least this many of its characters stay hidden.
HIDDEN = 8


def looks_secret(name: str) -> bool:
    """Whether a param or field called ``name`` may hold a credential."""
    return not SECRET_PARTS.isdisjoint(name.lower().replace("-", "_").split("_"))


def mask(value: str, *, show_last: bool = False) -> str:
    """A credential as displayed: its first four characters and ``****`` (LiteLLM's guardrail
    lists), or with ``show_last`` its first and last four around a star per character hidden
    (LiteLLM's ``/model/info``). A value too short to keep eight characters hidden that way
    is ``****`` whole."""
    shown = 2 * SHOWN if show_last else SHOWN
    if len(value) - shown < HIDDEN:
        return MASK
    if show_last:
        return value[:SHOWN] + "*" * (len(value) - shown) + value[-SHOWN:]
    return value[:SHOWN] + MASK


def masked_url(text: str) -> str:
    """``text`` (a URL) with its user, password and query hidden whole (a password's first
    characters would narrow a guess), its scheme, host and path kept as written."""
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return text
    userinfo, _, host = parts.netloc.rpartition("@")
    if userinfo:
        host = f"{MASK}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path,
                                    MASK if parts.query else "", ""))
