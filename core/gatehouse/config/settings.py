"""``settings`` (LiteLLM's ``litellm_settings``) and ``router_settings``: the fallbacks both take,
and each one's own."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class KeyGenerationRule(BaseModel):
    """Who may make one kind of key through /key/generate, and the fields they must give.
    Unknown keys are refused: a misspelt restriction would otherwise let everyone through."""

    model_config = ConfigDict(extra="forbid")

    # Team keys: the caller's role in the team; personal keys: the caller's user role.
    allowed_team_member_roles: list[str] | None = None
    allowed_user_roles: list[str] | None = None
    required_params: list[str] | None = None


class KeyGenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team_key_generation: KeyGenerationRule | None = None
    personal_key_generation: KeyGenerationRule | None = None


class TeamDefaults(BaseModel):
    """An entry of ``default_team_settings``. LiteLLM reads the first one's ``max_budget`` as a
    new team's when ``/team/new`` gives none; the entries' other keys (per-team callbacks)
    are LiteLLM's logging settings, which gatehouse does not have."""

    model_config = ConfigDict(extra="allow")

    max_budget: float | None = Field(default=None, ge=0)


class FallbackSettings(BaseModel):
    """The models a call falls back to when its own fails, as ``router_settings`` and
    ``litellm_settings`` both take them: ``[{"<model>": ["<fallback>", ...]}, ...]``, and
    ``default_fallbacks`` for a model without its own."""

    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    context_window_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    content_policy_fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)


class Settings(FallbackSettings):
    """``settings`` / ``litellm_settings``: the ``callbacks`` shorthand and the plugin-wide
    options the shorthand passes on (``banned_keywords_list``, ``llamaguard_model_name``, ...),
    and fallbacks."""

    model_config = ConfigDict(extra="allow")

    callbacks: list[str] = Field(default_factory=list)
    store_audit_logs: bool = False
    # Every log line as one JSON object (also JSON_LOGS=True in the environment).
    json_logs: bool = False
    # GET /metrics is public unless this asks for a key (LiteLLM's default).
    require_auth_for_metrics_endpoint: bool = False
    # The end_user label of the Prometheus metrics is filled in only when asked for: one
    # series per end user can be many.
    enable_end_user_cost_tracking_prometheus_only: bool = False
    # User ids refused outright: a list, or a path to a .txt file with one id per line.
    blocked_user_list: list[str] | str | None = None
    # What /key/generate fills in when a field is not given, and the most it may ask for.
    default_key_generate_params: dict[str, Any] = Field(default_factory=dict)
    upperbound_key_generate_params: dict[str, Any] = Field(default_factory=dict)
    key_generation_settings: KeyGenerationSettings | None = None
    # The model groups the public model hub shows, and its "useful links" (name -> URL).
    public_model_groups: list[str] = Field(default_factory=list)
    public_model_groups_links: dict[str, str] = Field(default_factory=dict)
    default_team_settings: list[TeamDefaults] = Field(default_factory=list)


class ModelGroupAlias(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # A hidden alias routes calls but is left out of /v1/models.
    hidden: bool = False


class RouterSettings(FallbackSettings):
    """``router_settings``: the model group aliases and fallbacks; LiteLLM's other router
    settings (routing strategy, retries, cooldowns, ...) are warned about and ignored."""

    model_config = ConfigDict(extra="allow")

    model_group_alias: dict[str, str | ModelGroupAlias] = Field(default_factory=dict)

    def aliases(self) -> dict[str, tuple[str, bool]]:
        """alias -> (model group, hidden)."""
        return {alias: (target, False) if isinstance(target, str)
                else (target.model, target.hidden)
                for alias, target in self.model_group_alias.items()}
