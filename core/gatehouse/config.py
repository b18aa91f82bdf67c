"""config.yaml as pydantic models.

LiteLLM's section names are accepted as aliases of ours (``litellm_params`` for ``params``,
``litellm_settings`` for ``settings``) so its config files load unchanged. ``os.environ/NAME``
strings are resolved while loading, from the environment or, with
``general_settings.key_management_system``, from the key manager it names. Every problem is a
:class:`ConfigError` naming the file, the field path as the file spells it and what was
expected; the mistakes of a file are gathered and refused together (:class:`Problems`), so one
run names them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import typing
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import (AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr,
                      ValidationError, field_validator, model_validator)
from pydantic.fields import FieldInfo

from .secret_managers import MANAGERS, SecretManagerError, open_manager

log = logging.getLogger("gatehouse.config")

ENV_PREFIX = "os.environ/"


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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # The key each field was given under (``litellm_params`` or ``params``), so that problems
    # found after loading point where the file says.
    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_keys(cls, data: Any, handler: Any) -> Any:
        model = handler(data)
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                model._written[name] = next(
                    (key for key in accepted_keys(name, info) if key in data), name)
        return model

    def written(self, field: str) -> str:
        return self._written.get(field, field)


class ModelParams(BaseModel):
    """How to reach one deployment. Provider-specific extras are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow")

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(default=600.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _names_a_model(cls, value: str) -> str:
        if not value.strip() or value.startswith("/") or value.endswith("/"):
            raise ValueError("expected '<provider>/<model>', e.g. 'openai/gpt-4o' or "
                             "'mock/echo', or a bare OpenAI model name such as 'gpt-4o'")
        return value

    @property
    def provider(self) -> str:
        return provider_of(self.model)

    @property
    def upstream_model(self) -> str:
        return self.model.split("/", 1)[1] if "/" in self.model else self.model


# LiteLLM infers the provider of a bare model name (``model: gpt-3.5-turbo``) from its own
# catalogue. These prefixes cover the bare names its users write for other providers, so such
# a name is refused as a provider not installed rather than sent to OpenAI; any other bare
# name is OpenAI's.
BARE_NAME_PROVIDERS = (("claude", "anthropic"), ("gemini", "gemini"), ("command", "cohere"),
                       ("mistral", "mistral"), ("llama", "ollama"))


def provider_of(model: str) -> str:
    """The provider a ``litellm_params.model`` (or a requested name) names or implies."""
    if "/" in model:
        return model.split("/", 1)[0]
    return next((provider for prefix, provider in BARE_NAME_PROVIDERS
                 if model.startswith(prefix)), "openai")


class ModelEntry(_Model):
    model_name: str
    params: ModelParams = Field(validation_alias=AliasChoices("params", "litellm_params"))
    model_info: dict[str, Any] = Field(default_factory=dict)


class GuardrailEntry(_Model):
    guardrail_name: str
    # Checked against the guardrail type's own params model once plugins are loaded.
    params: dict[str, Any] = Field(
        validation_alias=AliasChoices("params", "litellm_params"))
    guardrail_info: dict[str, Any] | None = None

    @field_validator("params")
    @classmethod
    def _names_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("guardrail"), str):
            raise ValueError("'guardrail' (the guardrail type, e.g. 'hide-secrets') is required")
        return value


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


PASS_THROUGH_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


class PassThroughEndpoint(BaseModel):
    """One of ``general_settings.pass_through_endpoints`` (or one stored through
    ``POST /config/pass_through_endpoint``): a route of the gateway's that forwards to
    ``target``. Unknown keys are refused: a misspelt ``auth`` would leave the route open."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=2, pattern=r"^/")
    target: str = Field(min_length=1)
    # Sent to the target, over the client's; a value may name os.environ/VARIABLE anywhere.
    headers: dict[str, str] = Field(default_factory=dict)
    forward_headers: bool = False
    auth: bool = False
    include_subpath: bool = False
    cost_per_request: float = Field(default=0.0, ge=0)
    # Sent to the target where the client's query string does not name them.
    default_query_params: dict[str, str] = Field(default_factory=dict)
    # Guardrails run on the JSON body (pre_call) besides the default_on and the key's.
    guardrails: list[str] = Field(default_factory=list)
    methods: list[typing.Literal[PASS_THROUGH_METHODS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PASS_THROUGH_METHODS), min_length=1)
    # LiteLLM's id of an endpoint stored through its API; accepted, not used.
    id: str | None = None


class UserHeaderMapping(BaseModel):
    """A request header naming who a call is for (LiteLLM's ``user_header_mappings``)."""

    model_config = ConfigDict(extra="forbid")

    header_name: str = Field(min_length=1)
    # customer: the end user; internal_user: read by LiteLLM, not by gatehouse (warned).
    litellm_user_role: typing.Literal["customer", "internal_user"]


class KeyManagementSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The os.environ/ names read from the key manager; unset: every one.
    hosted_keys: list[str] | None = None
    # Generated keys written to the manager: not done by gatehouse (warned).
    store_virtual_keys: bool = False
    prefix_for_stored_virtual_keys: str = "litellm/"
    # write_only: the manager is written, never read (os.environ/ reads the environment).
    access_mode: typing.Literal["read_only", "write_only", "read_and_write"] = "read_only"


SecretSystem = typing.Literal[tuple(MANAGERS)]  # type: ignore[valid-type]
# LiteLLM's other managers: refused by name, so the operator learns why rather than only
# what is allowed.
UNSUPPORTED_SYSTEMS = ("azure_key_vault", "google_secret_manager", "google_kms")


class KeyManagement(BaseModel):
    """Where ``os.environ/`` references are read from. Read from the raw file, before the rest
    of ``general_settings``, since every reference depends on it."""

    model_config = ConfigDict(extra="ignore")

    key_management_system: SecretSystem | None = None
    key_management_settings: KeyManagementSettings = Field(
        default_factory=KeyManagementSettings)

    @field_validator("key_management_system", mode="before")
    @classmethod
    def _supported(cls, system: Any) -> Any:
        if system in UNSUPPORTED_SYSTEMS:
            raise ValueError(
                f"{system} is not supported by gatehouse, which reads secrets from "
                f"{', '.join(MANAGERS)} only; keep these secrets in the environment or "
                f"move them to one of those")
        return system

    def hosts(self, name: str) -> bool:
        """Whether ``os.environ/<name>`` is read from the key manager."""
        settings = self.key_management_settings
        return (self.key_management_system is not None and settings.access_mode != "write_only"
                and (settings.hosted_keys is None or name in settings.hosted_keys))


class GeneralSettings(KeyManagement):
    model_config = ConfigDict(extra="allow")

    master_key: SecretStr | None = None
    # Refuse to start with a short or well-known master key unless this says otherwise.
    allow_weak_master_key: bool = False
    # Unset: a SQLite file (database_path); postgresql://...: a shared Postgres.
    database_url: SecretStr | None = None
    database_path: str = "gatehouse.db"
    # Unset: counters and caches live in each process.
    redis_url: SecretStr | None = None
    redis_namespace: str = "gatehouse"
    max_request_size_mb: float = Field(default=10.0, gt=0)
    # Seconds a client has to send a request's body once the gateway reads it; a body trickled
    # slower would hold its connection open for ever. 60 s lets 10 MB through at ~1.5 Mbit/s.
    request_body_timeout: float = Field(default=60.0, gt=0)
    max_response_size_mb: float | None = Field(default=None, gt=0)
    enforced_params: list[str] = Field(default_factory=list)
    # A request header naming the end user a call is made for, read before the body's `user`.
    user_header_name: str | None = None
    # The `customer` mapping's header names the end user, over user_header_name.
    user_header_mappings: list[UserHeaderMapping] = Field(default_factory=list)
    public_routes: list[str] = Field(default_factory=list)
    # LiteLLM's older switch making the whole model hub public (admin/model_hub.py).
    enable_public_model_hub: bool = False
    allowed_ips: list[str] | None = None
    # The header a trusted reverse proxy puts the client address in, e.g. X-Forwarded-For.
    # Never read unless configured: any client could send it.
    trusted_proxy_header: str | None = None
    use_x_forwarded_for: bool = False
    # Addresses/CIDRs of the reverse proxies whose header is believed. The client is the
    # right-most address in the header not among them (what Envoy and Kong do): entries left of
    # that were written by the client itself. Required with either setting above.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Seconds between spend-log writes; rows wait in memory (and survive a database outage).
    spend_flush_interval: float = Field(default=1.0, gt=0)
    # Keep each call's request and reply in its spend row, masked by the logging_only
    # guardrails first (what `gatehouse replay` reads). Off: no text is stored.
    store_prompts_in_spend_logs: bool = False
    # The one header keys are read from, instead of Authorization, x-api-key and the others.
    litellm_key_header_name: str | None = None
    # Models added through /model/new are kept in the database and served by every gateway
    # sharing it. The environment's STORE_MODEL_IN_DB=True does the same, as in LiteLLM.
    store_model_in_db: bool = False
    # Seconds GET /health reuses its last probe of the upstreams before probing them again.
    health_check_interval: float = Field(default=300.0, gt=0)
    # Probe the deployments every health_check_interval off the request path; GET /health
    # then answers with the last round's results and never probes itself.
    background_health_checks: bool = False
    # Routes forwarded to other APIs (proxy/passthrough.py).
    pass_through_endpoints: list[PassThroughEndpoint] = Field(default_factory=list)
    # Where alerts go; gatehouse sends "email" (ops/email.py) and warns about the others. One
    # version of LiteLLM's docs spells it `alerts`.
    alerting: list[str] = Field(default_factory=list,
                                validation_alias=AliasChoices("alerting", "alerts"))
    # Spend and audit rows older than these durations ("30d") are deleted, every interval;
    # unset, every row is kept. (LiteLLM has no audit retention; the name follows its spend one.)
    maximum_spend_logs_retention_period: str | None = None
    maximum_spend_logs_retention_interval: str = "1d"
    maximum_audit_logs_retention_period: str | None = None
    # Bearer tokens signed by an identity provider (access/jwt_auth.py), beside virtual keys.
    enable_jwt_auth: bool = False
    # Checked field by field by access/jwt_auth.JwtSettings, in LiteLLM's words.
    litellm_jwtauth: dict[str, Any] = Field(default_factory=dict)
    # [{role, models, routes}]: what a JWT's role may call (access/jwt_auth.RolePermission).
    role_permissions: list[dict[str, Any]] = Field(default_factory=list)
    # Admin UI password logins (POST /login): failures allowed per username and per client
    # address in each fixed window of ui_login_failure_window seconds. Past either limit the
    # next attempts are refused (429, Retry-After) without the password being checked, until
    # the window ends (access/login_throttle.py).
    ui_login_max_failures_per_username: int = Field(default=5, gt=0)
    ui_login_max_failures_per_ip: int = Field(default=20, gt=0)
    ui_login_failure_window: int = Field(default=900, gt=0)

    @property
    def models_in_db(self) -> bool:
        return self.store_model_in_db or os.environ.get("STORE_MODEL_IN_DB", "").lower() == "true"

    @property
    def end_user_header(self) -> str | None:
        """The header naming the end user: the first ``customer`` mapping's, else
        ``user_header_name`` (LiteLLM's order)."""
        for mapping in self.user_header_mappings:
            if mapping.litellm_user_role == "customer":
                return mapping.header_name
        return self.user_header_name

    @model_validator(mode="after")
    def _warn_unused(self) -> GeneralSettings:
        if self.key_management_settings.store_virtual_keys:
            log.warning("general_settings.key_management_settings.store_virtual_keys: "
                        "gatehouse does not write generated keys to a key manager; ignored")
        for mapping in self.user_header_mappings:
            if mapping.litellm_user_role == "internal_user":
                log.warning("general_settings.user_header_mappings: the internal_user "
                            "mapping of %r is ignored: a call's user is its key's, never a "
                            "header's", mapping.header_name)
        return self


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


class Config(_Model):
    # Unknown top-level sections are LiteLLM's (warned about, ignored) or typos (refused):
    # see check_sections.
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model_list: list[ModelEntry] = Field(default_factory=list)
    guardrails: list[GuardrailEntry] = Field(default_factory=list)
    callbacks: list[str] = Field(default_factory=list)
    settings: Settings = Field(default_factory=Settings,
                              validation_alias=AliasChoices("settings", "litellm_settings"))
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    environment_variables: dict[str, str] = Field(default_factory=dict)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    # The folder relative paths in the config are resolved against.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @property
    def sends_email(self) -> bool:
        """Whether the config turns on email notifications, as either LiteLLM version asks."""
        return self.wants("smtp_email") or "email" in self.general_settings.alerting

    @property
    def all_callbacks(self) -> list[str]:
        return [name for _, name in self.callback_entries()]

    def callback_entries(self, *, logging_only: bool = False) -> list[tuple[str, str]]:
        """``(where, name)`` of each callback named in ``callbacks`` or ``settings.callbacks``,
        the first place a name appears; LiteLLM's logging callbacks, which gatehouse ignores,
        only when ``logging_only``."""
        places = [*((f"callbacks[{i}]", name) for i, name in enumerate(self.callbacks)),
                  *((f"{self.written('settings')}.callbacks[{i}]", name)
                    for i, name in enumerate(self.settings.callbacks))]
        first: dict[str, str] = {}
        for where, name in places:
            first.setdefault(name, where)
        return [(where, name) for name, where in first.items()
                if (name in LITELLM_LOGGING_CALLBACKS) == logging_only]

    def wants(self, *callbacks: str) -> bool:
        """Whether ``callbacks`` names any of these logging callbacks."""
        return any(name in callbacks for _, name in self.callback_entries(logging_only=True))

    def resolve_path(self, value: str | os.PathLike[str]) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path


# LiteLLM's general_settings and litellm_settings that gatehouse does not implement, by our
# section name. Ignoring one of these loses a feature, not a protection: a warning says so.
LITELLM_IGNORED = {
    "general_settings": frozenset("""
        alerting_threshold alert_types alert_to_webhook_url alerting_args
        allow_client_side_credentials allow_requests_on_db_unavailable
        health_check_details database_connection_pool_limit database_connection_timeout
        default_team_disabled disable_master_key_return disable_reset_budget disable_spend_logs
        disable_retry_on_max_parallel_request_limit_error
        forward_client_headers_to_llm_api forward_openai_org_id infer_model_from_keys
        maximum_spend_logs_cleanup_cron
        proxy_batch_write_at spend_report_frequency
        ui_access_mode
    """.split()),
    "settings": frozenset("""
        success_callback failure_callback service_callback drop_params modify_params set_verbose
        num_retries request_timeout cache cache_params
        enable_preview_features telemetry ssl_verify force_ipv4 return_response_headers
        budget_duration max_end_user_budget
        default_internal_user_params max_internal_user_budget internal_user_budget_duration
        public_teams disable_end_user_cost_tracking redact_messages_in_exceptions llm_guard_mode
        google_moderation_confidence_threshold
    """.split()),
}
# LiteLLM's top-level sections gatehouse does not implement: ignored with a warning.
LITELLM_SECTIONS = frozenset("""
    finetune_settings files_settings assistant_settings credential_list mcp_servers
    vector_store_registry search_tools prompts model_group_settings batch_settings
""".split())
# ``include`` pulls more of the config (guardrails among it) from other files: ignoring it
# would run without what they hold, so it is refused.
REFUSED_SECTIONS = {"include": "run without the models and guardrails of the files it names"}
# LiteLLM callbacks that only send records somewhere (metrics, traces, log stores, alerts):
# without them the gateway loses a view of its calls, not a protection, so a config naming
# them loads with a warning. Any other unknown callback may be a check, and is refused.
LITELLM_LOGGING_CALLBACKS = frozenset("""
    prometheus otel opentelemetry langfuse langfuse_otel langsmith datadog
    datadog_llm_observability s3 s3_v2 gcs_bucket gcs_pubsub azure_storage dynamodb sqs
    helicone lunary sentry slack arize arize_phoenix braintrust mlflow athina greenscale
    openmeter logfire literalai humanloop galileo opik posthog generic_api webhook email
    supabase traceloop wandb promptlayer weave cloudzero agentops deepeval smtp_email
    resend_email sendgrid_email
""".split())
# The logging callbacks gatehouse implements itself (ops/metrics.py, ops/tracing.py,
# ops/email.py).
OBSERVER_CALLBACKS = frozenset({"prometheus", "otel", "opentelemetry", "smtp_email"})
# Ignoring one of these would leave the gateway more open than the file asks for, so unless it
# is switched off it stops the start, saying what ignoring it would do.
LITELLM_REFUSED = {
    "general_settings": {
        "custom_auth": "skip your own authentication",
        "enable_oauth2_auth": "skip OAuth2 authentication",
        "enable_oauth2_proxy_auth": "skip OAuth2 proxy authentication",
        "allowed_routes": "serve routes it leaves out",
        "admin_only_routes": "let any key call the routes it keeps for admins",
        "enforce_user_param": "accept calls without `user` (gatehouse's way: "
                              "enforced_params: [user])",
        "max_parallel_requests": "leave parallel calls unlimited",
        "global_max_parallel_requests": "leave parallel calls unlimited",
        "custom_key_generate": "skip your checks on new keys",
    },
    "settings": {
        "guardrails": "run none of the guardrails it lists (gatehouse reads them from the "
                      "top-level guardrails: list)",
        "max_budget": "leave the gateway's total spend unlimited",
        "turn_off_message_logging": "hand message content to logging callbacks",
        "redact_user_api_key_info": "hand key and team details to logging callbacks",
    },
}


def check_setting_keys(config: Config, source: str, plugin_options: Collection[str]) -> None:
    """Unknown keys in ``general_settings`` and ``settings``: a near miss of a known key, or a
    LiteLLM setting whose absence would weaken the gateway, is a ConfigError; any other is
    warned about as ignored. ``plugin_options`` are the keys the ``callbacks:`` shorthand hands
    to some installed guardrail type."""
    problems = []
    for where, name in config.callback_entries(logging_only=True):
        if name in OBSERVER_CALLBACKS:
            continue
        log.warning("%s: %s: gatehouse does not implement LiteLLM's %r callback; ignored",
                    source, where, name)
    if others := [a for a in config.general_settings.alerting if a != "email"]:
        log.warning("%s: %s.alerting: gatehouse does not implement LiteLLM's alerting%s; "
                    "ignored", source, config.written("general_settings"),
                    f" to {', '.join(others)}" if len(others) < len(
                        config.general_settings.alerting) else "")
    for section, model, known in (
            ("general_settings", config.general_settings, model_keys(GeneralSettings)),
            ("settings", config.settings, [*model_keys(Settings), *plugin_options])):
        for key, value in (model.model_extra or {}).items():
            if key in known:  # a plugin option the callbacks: shorthand passes on
                continue
            where = f"{config.written(section)}.{key}"
            weakens = LITELLM_REFUSED[section].get(key)
            if weakens and not _switched_off(value):
                problems.append(
                    f"{where}: gatehouse does not implement LiteLLM's {key}, and ignoring it "
                    f"would {weakens}; remove it or switch it off")
            elif weakens or key in LITELLM_IGNORED[section]:
                log.warning("%s: %s: gatehouse does not implement LiteLLM's %s; ignored",
                            source, where, key)
            elif (near := did_you_mean(key, known)) is not None:
                problems.append(f"{where}: unknown setting; did you mean `{near}`?")
            else:
                log.warning("%s: %s: unknown setting; ignored", source, where)
    if problems:
        raise ConfigError.in_file(source, *problems)


def _switched_off(value: Any) -> bool:
    # 0 is not off: a budget of 0 allows nothing.
    return value is None or value is False or (isinstance(value, (str, list, dict)) and not value)


def load_config(path: str | os.PathLike[str]) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return config_from_dict(data or {}, source=str(path), base_dir=path.resolve().parent)


def config_from_dict(
    data: Any, *, source: str = "<config>", base_dir: Path | None = None
) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {_kind(data)}")
    for name, value in (data.get("environment_variables") or {}).items():
        os.environ.setdefault(str(name), str(value))
    unset: dict[str, str] = {}
    data = _resolve_env(data, (), unset, _secret_reader(data, source))
    problems = [f"{where}: {problem}" for where, problem in unset.items()]
    try:
        config = Config.model_validate({**data, "base_dir": base_dir or Path.cwd()})
    except ValidationError as exc:
        # A value still naming an unset variable is already reported as that.
        problems += [problem for problem in validation_problems(exc, model=Config)
                     if not problem.startswith(tuple(f"{where}:" for where in unset))]
    else:
        problems += check_sections(config, source)
    if problems:
        raise ConfigError.in_file(source, *problems)
    return config


def check_sections(config: Config, source: str) -> list[str]:
    """The problems of top-level sections and router settings gatehouse does not know: a near
    miss of a known section, or one whose absence weakens the gateway, is a problem; any other
    is warned about, one line each, and ignored."""
    problems = []
    for key in config.model_extra or {}:
        if key in REFUSED_SECTIONS:
            problems.append(f"{key}: gatehouse does not implement LiteLLM's {key}, and "
                            f"ignoring it would {REFUSED_SECTIONS[key]}; remove it")
        elif key in LITELLM_SECTIONS:
            log.warning("%s: %s: gatehouse does not implement LiteLLM's %s; ignored",
                        source, key, key)
        elif (near := did_you_mean(key, model_keys(Config))) is not None:
            problems.append(f"{key}: unknown key; did you mean `{near}`?")
        else:
            log.warning("%s: %s: unknown section; ignored", source, key)
    for key in config.router_settings.model_extra or {}:
        log.warning("%s: router_settings.%s: gatehouse does not implement LiteLLM's %s; "
                    "ignored", source, key, key)
    return problems


def validation_problems(exc: ValidationError, *, model: type[BaseModel],
                        prefix: tuple = ()) -> list[str]:
    """One ``"<where>: <what>"`` per error pydantic found validating ``model``, whose data sits
    at ``prefix`` in the file."""
    problems = []
    for err in exc.errors():
        where = format_path((*prefix, *err["loc"]))
        if err["type"] == "extra_forbidden":
            known = _keys_at(model, err["loc"][:-1])
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


def accepted_keys(name: str, info: FieldInfo) -> list[str]:
    """The keys a model field is read from: its name and its alias choices."""
    alias = info.validation_alias
    choices = [c for c in alias.choices if isinstance(c, str)] \
        if isinstance(alias, AliasChoices) else []
    return list(dict.fromkeys([*choices, name]))


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may give ``model``; excluded fields (``base_dir``) are not read from it."""
    return [key for name, info in model.model_fields.items() if not info.exclude
            for key in accepted_keys(name, info)]


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys accepted by the model found at ``loc`` inside ``model``."""
    for part in loc:
        if isinstance(part, int):
            continue
        info = next((i for n, i in model.model_fields.items() if part in accepted_keys(n, i)),
                    None)
        inner = _model_in(info.annotation) if info is not None else None
        if inner is None:
            return []
        model = inner
    return model_keys(model)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model in a field's type: ``X``, ``list[X]``, ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None),
                None)


def format_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


# A value still holding this is a KMS ciphertext the CLI did not decrypt (no USE_AWS_KMS).
KMS_VALUE_PREFIX = "aws_kms/"


def _secret_reader(data: dict[str, Any], source: str) -> Callable[[str], str | None]:
    """How ``os.environ/NAME`` is read: from the key manager ``general_settings`` names, for
    the names it hosts, else from the environment. A manager that cannot be set up stops the
    load here: every reference it hosts would fail."""
    general = data.get("general_settings")
    try:
        chosen = KeyManagement.model_validate(general if isinstance(general, dict) else {})
    except ValidationError:  # refused with the rest of general_settings
        chosen = KeyManagement()
    system = chosen.key_management_system
    if system is None or not any(map(chosen.hosts, _env_names(data))):
        return os.environ.get
    try:
        manager = open_manager(system)
    except SecretManagerError as exc:
        raise ConfigError.in_file(
            source, f"general_settings.key_management_system: {system}: {exc}") from None
    read: dict[str, str | None] = {}

    def reader(name: str) -> str | None:
        if not chosen.hosts(name):
            return os.environ.get(name)
        if name not in read:
            try:
                read[name] = manager.read(name)
            except SecretManagerError as exc:
                raise SecretManagerError(f"cannot read {name} from {system}: {exc}") from None
        if read[name] is None:
            raise SecretManagerError(f"{system} has no secret {name}")
        return read[name]

    return reader


def _env_names(value: Any) -> Iterator[str]:
    """The NAME of every ``os.environ/NAME`` in ``value``."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        yield value[len(ENV_PREFIX):]
    elif isinstance(value, (dict, list)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _env_names(item)


def _resolve_env(value: Any, path: tuple, unset: dict[str, str],
                 read: Callable[[str], str | None]) -> Any:
    """``value`` with every ``os.environ/NAME`` replaced by what ``read(NAME)`` gives; the
    ones it cannot give are left as they are and noted in ``unset`` (path -> problem)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        try:
            found = read(name)
        except SecretManagerError as exc:
            unset[format_path(path)] = str(exc)
            return value
        if found is None:
            unset[format_path(path)] = f"environment variable {name} is not set"
            return value
        if found.startswith(KMS_VALUE_PREFIX):
            unset[format_path(path)] = (f"{name} holds an {KMS_VALUE_PREFIX} ciphertext; set "
                                        f"USE_AWS_KMS=True to have it decrypted at start")
            return value
        return found
    if isinstance(value, dict):
        return {k: _resolve_env(v, (*path, k), unset, read) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*path, i), unset, read) for i, v in enumerate(value)]
    return value


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"
