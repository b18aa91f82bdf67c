"""Which models a caller may use, and which it sees listed.

A call must pass each scope's list in turn -- the key's, then its team's (LiteLLM's order) --
where an empty list allows every model. An entry is a model name, an access group (the
deployments whose ``model_info.access_groups`` name it), a pattern with ``*``, or one of the
special names ``*``, ``all-proxy-models`` and, on a key, ``all-team-models`` (defer to the
team). Users' and organizations' lists join as further scopes in :func:`scopes`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..config.model_list import provider_of
from ..errors import ClientError

if TYPE_CHECKING:
    from ..guardrails.call import Principal

EVERY_MODEL = frozenset({"*", "all-proxy-models"})
TEAM_MODELS = "all-team-models"


def scopes(principal: Principal) -> list[tuple[str, Sequence[str]]]:
    """``(scope, allowed models)`` a call is checked against, in order. A key listing
    ``all-team-models`` leaves the choice to its team."""
    key_models = (principal.key or {}).get("models") or ()
    found = [] if TEAM_MODELS in key_models else [("key", key_models)]
    found.append(("team", (principal.team or {}).get("models") or ()))
    # A user's list binds their personal keys; a team's organization's binds the team.
    if principal.team_id is None:
        found.append(("user", (principal.user or {}).get("models") or ()))
    found.append(("org", (principal.organization or {}).get("models") or ()))
    return [(scope, models) for scope, models in found if models]


def team_aliases(principal: Principal) -> Mapping[str, str]:
    """The caller's team's ``model_aliases``: names its keys may call, each standing for a
    served model."""
    aliases = (principal.team or {}).get("model_aliases")
    return aliases if isinstance(aliases, dict) else {}


class ModelAccess:
    """Model-access decisions against the served models' access groups and providers, which
    the router replaces whole whenever the served models change."""

    def __init__(self) -> None:
        self.groups: Mapping[str, frozenset[str]] = {}
        # Served model name -> its deployment's provider: what a bare name implies.
        self.providers: Mapping[str, str] = {}

    def check(self, principal: Principal, model: str) -> None:
        """Refuse a model the caller's key or team may not use: 401, before any question of
        whether the model exists, as LiteLLM answers."""
        self.check_grants(principal, model)
        self.check_scopes(principal, scopes(principal), model)

    def check_grants(self, principal: Principal, model: str) -> None:
        """Refuse a model outside one of the caller's :class:`ModelGrant`: 403."""
        for grant in principal.model_grants:
            if not self.allows(grant.allowed, model):
                raise ClientError(403, grant.refusal.replace("{model}", model),
                                  kind="auth_error", param="None")

    def check_scopes(self, principal: Principal, checked: Iterable[tuple[str, Sequence[str]]],
                     model: str) -> None:
        """:meth:`check` against some of the caller's :func:`scopes`."""
        aliases = team_aliases(principal)
        for scope, allowed in checked:
            if not self.allows(allowed, model, aliases):
                raise ClientError(
                    401, f"{scope} not allowed to access model. This {scope} can only access "
                         f"models={list(allowed)}. Tried to access {model}",
                    kind=f"{scope}_model_access_denied", param="model")

    def allows(self, allowed: Sequence[str], model: str,
               aliases: Mapping[str, str] = {}) -> bool:
        if model in allowed or model in aliases or not EVERY_MODEL.isdisjoint(allowed):
            return True
        # A bare name (gpt-4o) also matches patterns written with its provider (openai/*):
        # its deployment's, else the one the name implies.
        names = (model,) if "/" in model else (
            model, f"{self.providers.get(model) or provider_of(model)}/{model}")
        return any(entry == model or ("*" in entry and any(glob(entry).match(name) is not None
                                                           for name in names))
                   for entry in self._expanded(allowed))

    def _expanded(self, allowed: Iterable[str]) -> Iterable[str]:
        for entry in allowed:
            yield entry
            yield from self.groups.get(entry, ())

    def visible(self, principal: Principal, served: Sequence[str]) -> list[str]:
        """The names ``/v1/models`` shows the caller: its key's models, else its team's, else
        every served model -- access groups and the special names expanded. Key and team
        lists are not intersected here (LiteLLM lists either); the caller's grants are: a
        name must be in each."""
        team_models = (principal.team or {}).get("models") or ()
        listed = (principal.key or {}).get("models") or team_models
        names = dict.fromkeys(self._names(listed, team_models, served))
        return [name for name in names
                if all(self.allows(grant.allowed, name) for grant in principal.model_grants)]

    def _names(self, listed: Sequence[str], team_models: Sequence[str],
               served: Sequence[str]) -> Iterable[str]:
        if not listed:
            yield from served
            return
        for entry in listed:
            if entry == TEAM_MODELS:
                yield from self._names(team_models, (), served)
            elif entry in EVERY_MODEL:
                yield from served
            else:
                yield from sorted(self.groups[entry]) if entry in self.groups else (entry,)

    def groups_of(self, names: Iterable[str]) -> list[str]:
        """The access groups with a member among ``names``."""
        names = set(names)
        return [group for group, members in self.groups.items() if members & names]


class Glob:
    """A model name with ``*`` wildcards, matching whole names. Matched by finding each literal
    part in turn, never by a regular expression: ``(.*)`` groups backtrack, and a name with a
    dozen stars (anyone who may set a key's models can write one) would hold the event loop
    for minutes."""

    __slots__ = ("head", "middle", "tail")

    def __init__(self, entry: str):
        self.head, *self.middle, self.tail = entry.split("*")

    def match(self, name: str) -> tuple[str, ...] | None:
        """What each ``*`` stood for (each as short as the parts after it allow), or None."""
        start, end = len(self.head), len(name) - len(self.tail)
        if end < start or not name.startswith(self.head) or not name.endswith(self.tail):
            return None
        found = []
        for part in self.middle:
            at = name.find(part, start, end)
            if at < 0:
                return None
            found.append(name[start:at])
            start = at + len(part)
        found.append(name[start:end])
        return tuple(found)


@functools.lru_cache(maxsize=1024)
def glob(entry: str) -> Glob:
    """``entry`` (a name with at least one ``*``) as a :class:`Glob`, made once."""
    return Glob(entry)

