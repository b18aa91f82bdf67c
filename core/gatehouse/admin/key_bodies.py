"""What the ``/key/*`` routes take and answer: the request bodies and query strings with
LiteLLM's fields and defaults, and the replies the API docs read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .bodies import Body, Duration, Limit, Query, Reply, Update

MAX_PAGE_SIZE = 100
SORT_COLUMNS = {"spend": "spend", "max_budget": "max_budget", "created_at": "created_at",
                "updated_at": "updated_at", "token": "key_hash", "key_alias": "key_alias"}
LimitType = Literal["guaranteed_throughput", "best_effort_throughput", "dynamic"]


class ModelBudget(Body):
    budget_limit: float = Field(ge=0)
    time_period: Duration | None = None


class KeyFields(Body):
    key_alias: str | None = None
    # Lifetime from now ("30s", "2h", "7d", "1mo"); null: never expires.
    duration: Duration | None = None
    models: list[str] | None = Field(default_factory=list)
    aliases: dict[str, Any] | None = Field(default_factory=dict)
    config: dict[str, Any] | None = Field(default_factory=dict)
    spend: float | None = Field(default=0.0, ge=0)
    max_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration | None = None
    budget_id: str | None = None
    soft_budget: float | None = Field(default=None, ge=0)
    max_parallel_requests: Limit | None = None
    tpm_limit: Limit | None = None
    rpm_limit: Limit | None = None
    rpm_limit_type: LimitType | None = None
    tpm_limit_type: LimitType | None = None
    model_max_budget: dict[str, ModelBudget] | None = Field(default_factory=dict)
    model_rpm_limit: dict[str, Limit] | None = None
    model_tpm_limit: dict[str, Limit] | None = None
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    guardrails: list[str] | None = None
    prompts: list[str] | None = None
    tags: list[str] | None = None
    enforced_params: list[str] | None = None
    # Per-key switches read by guardrails, e.g. {"hide_secrets": false}.
    permissions: dict[str, Any] | None = Field(default_factory=dict)
    allowed_cache_controls: list[str] | None = Field(default_factory=list)
    allowed_routes: list[str] | None = Field(default_factory=list)
    allowed_passthrough_routes: list[str] | None = None
    key_type: Literal["default", "llm_api", "management", "read_only"] | None = None
    blocked: bool | None = None
    user_id: str | None = None
    team_id: str | None = None
    object_permission: dict[str, Any] | None = None
    send_invite_email: bool | None = None
    auto_rotate: bool | None = False
    rotation_interval: Duration | None = None


class GenerateKey(KeyFields):
    # A key the caller chose instead of a random one.
    key: str | None = None


class UpdateKey(KeyFields, Update):
    key: str
    temp_budget_increase: float | None = Field(default=None, ge=0)
    temp_budget_expiry: Annotated[datetime, Field(strict=False)] | None = None

    @model_validator(mode="after")
    def _temp_budget(self) -> UpdateKey:
        if (self.temp_budget_increase is None) != (self.temp_budget_expiry is None):
            raise ValueError("temp_budget_increase and temp_budget_expiry must be set together")
        return self


class RegenerateKey(KeyFields, Update):
    key: str | None = None
    new_key: str | None = None
    new_master_key: str | None = None


class DeleteKeys(Body):
    keys: list[str] | None = None
    key_aliases: list[str] | None = None

    @model_validator(mode="after")
    def _names_some(self) -> DeleteKeys:
        if not self.keys and not self.key_aliases:
            raise ValueError("At least one of 'keys' or 'key_aliases' must be provided.")
        return self


class KeyRef(Body):
    key: str


class KeyView(Reply):
    token: str | None = Field(default=None, description="The key's SHA-256 hash: how routes "
                                                        "name it (/key/info gives it as key)")
    key_name: str = Field(description="The key shortened for display, e.g. sk-...a1b2")
    key_alias: str | None
    user_id: str | None
    team_id: str | None
    models: list[str] = Field(description="Models the key may call; [] is every model")
    spend: float
    max_budget: float | None
    tpm_limit: int | None
    rpm_limit: int | None
    metadata: dict[str, Any]
    blocked: bool | None
    expires: str | None = Field(description="ISO 8601, UTC; null: never")
    created_at: str
    updated_at: str


class KeyInfoQuery(Query):
    key: str | None = Field(default=None, description="The key or its hash; without it, the "
                                                      "calling key")


class KeyInfo(Reply):
    key: str = Field(description="The key's hash")
    info: KeyView


class KeyListQuery(Query):
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE)
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    key_hash: str | None = Field(default=None, description="The key or its hash")
    key_alias: str | None = None
    return_full_object: bool = Field(default=False, description="Whole records, not hashes")
    include_team_keys: bool = Field(
        default=False, description="Also the keys of the teams the caller manages")
    include_created_by_keys: bool = False
    sort_by: str = Field(default="created_at", description=f"One of {', '.join(SORT_COLUMNS)}")
    sort_order: Literal["asc", "desc", "ASC", "DESC"] = "desc"


class KeyList(Reply):
    keys: list[str] | list[KeyView] = Field(description="Hashes, or with return_full_object "
                                                        "whole records")
    total_count: int
    current_page: int
    total_pages: int
