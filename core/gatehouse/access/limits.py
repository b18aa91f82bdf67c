"""What a principal's calls are held to -- the budgets, rate limits, model lists and parallel
slots of its key, team, user, team membership and organization -- worked out once per looked-up
principal, so a call runs through only the limits that are set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ClientError
from ..store.schema import Row
from .model_access import scopes as model_scopes

if TYPE_CHECKING:
    from ..guardrails.call import Call, Principal

# How LiteLLM names each limit's owner in its 429 messages and headers.
SCOPES = {"key": "api_key", "team": "team", "user": "user", "team_member": "team_member",
          "end_user": "end_user"}


@dataclass(frozen=True, slots=True)
class Scope:
    """A budget a call is held against: its shared spend counter, the spend the counter starts
    from when the cache has none, the limit, and how an overrun is worded."""

    counter: str
    start: float
    max_budget: float | None
    label: str = ""
    user: str | None = None  # a user's own budget is worded as LiteLLM words it
    # A key or team whose soft budget, once crossed, is logged.
    soft: tuple[str, str, float] | None = None

    def check(self, spent: float) -> None:
        """Refuse a call when the budget was spent before it."""
        if spent >= self.max_budget:
            raise ClientError(400, self.refusal(spent), kind="budget_exceeded")

    def refusal(self, spent: float) -> str:
        if self.user is not None:
            return (f"ExceededBudget: User={self.user} over budget. Spend={spent:.6g}, "
                    f"Budget={self.max_budget:g}")
        return (f"Budget has been exceeded! {self.label}Current cost: {spent:.6g}, "
                f"Max budget: {self.max_budget:g}")


@dataclass(frozen=True, slots=True)
class Rate:
    """An rpm and/or tpm limit: ``scope`` and ``ident`` name it in LiteLLM's 429."""

    scope: str
    ident: str
    rpm: int | None
    tpm: int | None

    @property
    def counter(self) -> str:
        return f"{self.scope}:{self.ident}"


@dataclass(frozen=True, slots=True)
class Limits:
    """In the order the checks run (management API §11): the key's model list; the team
    membership's budget; the key's budget; the team's, the user's and the organization's
    model lists; their budgets; the rate limits; the key's parallel slots. ``spenders`` are
    the counters every call's spend moves (the key's and team's even without a budget, so a
    budget set later starts from every call)."""

    key_models: tuple[tuple[str, Sequence[str]], ...] = ()
    other_models: tuple[tuple[str, Sequence[str]], ...] = ()
    member_budget: Scope | None = None
    key_budget: Scope | None = None
    upper_budgets: tuple[Scope, ...] = ()
    rates: tuple[Rate, ...] = ()
    per_model: bool = False  # the key has per-model rpm, tpm or budgets
    parallel: int | None = None
    spenders: tuple[Scope, ...] = ()
    # The key's own spend counter, among the spenders (its budget alerts are mailed).
    key_spender: Scope | None = None
    # The counters of tokens used (key, team, and limits above them with a tpm limit).
    token_counters: tuple[str, ...] = ()

    @property
    def budgets(self) -> bool:
        return bool(self.member_budget or self.key_budget or self.upper_budgets)

    @staticmethod
    def of(principal: Principal) -> Limits:
        key, team = principal.key, principal.team
        # A JWT's principal (access/jwt_auth.py) has no key, but is held to its team, user
        # and organization as a key of theirs would be.
        if key is None and team is None and principal.user is None \
                and principal.organization is None:
            return NONE
        key = key or {}
        models = model_scopes(principal)
        spenders, rates, tokens = [], [], []
        key_budget = team_budget = key_spender = None
        for kind, row, ident in (("key", key, principal.key_hash),
                                 ("team", team, principal.team_id)):
            if row is None or ident is None:
                continue
            label = "" if kind == "key" else f"{kind.capitalize()}={ident_label(kind, row)} "
            soft = row.get("soft_budget")
            scope = Scope(spend_counter(kind, ident, row), float(row.get("spend") or 0),
                          row.get("max_budget"), label,
                          soft=None if soft is None else (kind, ident_label(kind, row), soft))
            spenders.append(scope)
            if kind == "key":
                key_spender = scope
            if scope.max_budget is not None:
                if kind == "key":
                    key_budget = scope
                else:
                    team_budget = scope
            rates.append(Rate(SCOPES[kind], ident, row.get("rpm_limit"), row.get("tpm_limit")))
            tokens.append(f"tpm:{SCOPES[kind]}:{ident}")
        member_budget, upper = _identity_budgets(principal)
        budgets = [b for b in (team_budget, *upper) if b is not None]
        # A team key's user is charged though the call is not held to the user's budget: a
        # user's spend is what all their keys spent, as in LiteLLM (and as the database adds
        # it), so their personal keys stop once their team keys have spent the user's budget.
        charged = user_budget(principal.user) if principal.team_id is not None else None
        spenders += [b for b in (member_budget, *upper, charged) if b is not None]
        for rate in _identity_rates(principal):
            rates.append(rate)
            if rate.tpm is not None:
                tokens.append(f"tpm:{rate.counter}")
        metadata = key.get("metadata") or {}
        return Limits(
            key_models=tuple(s for s in models if s[0] == "key"),
            other_models=tuple(s for s in models if s[0] != "key"),
            member_budget=member_budget, key_budget=key_budget, upper_budgets=tuple(budgets),
            rates=tuple(r for r in rates if r.rpm is not None or r.tpm is not None),
            per_model=any(metadata.get(f) or key.get(f) for f in PER_MODEL_FIELDS),
            parallel=key.get("max_parallel_requests"), spenders=tuple(spenders),
            key_spender=key_spender,
            token_counters=tuple(tokens))


NONE = Limits()
PER_MODEL_FIELDS = ("model_rpm_limit", "model_tpm_limit", "model_max_budget")


def _identity_budgets(principal: Principal) -> tuple[Scope | None, list[Scope]]:
    """The budgets above the key and team: the user's membership of the team, then the key's
    user (personal keys only) and the team's organization."""
    upper = []
    if principal.team_id is None and (user := user_budget(principal.user)) is not None:
        upper.append(user)
    member = linked_budget("team_member", principal.member, principal.member_budget, "")
    organization = principal.organization
    if organization is not None:
        scope = linked_budget("organization", organization, principal.organization_budget,
                              f"Organization={organization.get('organization_id')} ")
        if scope is not None:
            upper.append(scope)
    return member, upper


def user_budget(user: Row | None) -> Scope | None:
    if user is None or user.get("max_budget") is None:
        return None
    return Scope(spend_counter("user", user["user_id"], user), float(user["spend"]),
                 user["max_budget"], user=user["user_id"])


def linked_budget(kind: str, row: Row | None, budget: Row | None, label: str) -> Scope | None:
    """The budget row a membership, organization or end user links to, as a Scope."""
    if row is None or budget is None or budget.get("max_budget") is None:
        return None
    ident = row.get("membership_id") or row.get("organization_id") or row["user_id"]
    # The budget row's reset period names the counter: its reset zeroes this row.
    return Scope(spend_counter(kind, ident, budget), float(row["spend"]), budget["max_budget"],
                 label)


def _identity_rates(principal: Principal) -> list[Rate]:
    """The rate limits above the key and team: the key's user's own and the user's team
    membership's (on its budget row)."""
    found = []
    for kind, row, limits in (("user", principal.user, principal.user),
                              ("team_member", principal.member, principal.member_budget)):
        rate = _rate(kind, row, limits)
        if rate is not None:
            found.append(rate)
    return found


def _rate(kind: str, row: Row | None, limits: Row | None) -> Rate | None:
    if row is None or limits is None or (limits.get("rpm_limit") is None
                                         and limits.get("tpm_limit") is None):
        return None
    # A membership is named "<team>:<user>", as LiteLLM's 429 names it.
    ident = f"{row['team_id']}:{row['user_id']}" if kind == "team_member" else row["user_id"]
    return Rate(SCOPES[kind], ident, limits.get("rpm_limit"), limits.get("tpm_limit"))


def end_user_limits(call: Call) -> tuple[Scope | None, Rate | None]:
    """The end user's budget and rate limit (on its budget row), looked up per call."""
    return (linked_budget("end_user", call.end_user, call.end_user_budget, ""),
            _rate("end_user", call.end_user, call.end_user_budget))


def spend_counter(kind: str, ident: str, row: Row) -> str:
    """The cache counter of a spender's spend in its current budget period: a reset
    (which moves ``budget_reset_at``) starts a new counter from the database's figure, so a
    gateway still holding the row from before the reset cannot carry the old spend over."""
    period = row.get("budget_reset_at")
    return f"spend:{kind}:{ident}" if period is None else f"spend:{kind}:{ident}:{period:.0f}"


def ident_label(kind: str, row: Row) -> str:
    return str(row.get("team_id") if kind == "team" else row.get("key_name"))


def per_model(metadata: dict[str, Any], key: Row, field: str, model: str) -> int | None:
    limits = metadata.get(field) or key.get(field)
    value = limits.get(model) if isinstance(limits, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
