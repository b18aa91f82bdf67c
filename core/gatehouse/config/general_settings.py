"""``general_settings``: the master key, the database and Redis, limits on requests, who the
caller is (headers, trusted proxies, JWTs), pass-through endpoints, retention, ..."""

from __future__ import annotations

import logging
import os
import typing
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator

from .environ import KeyManagement

# One logger for the whole config, under the name operators know it by.
log = logging.getLogger("gatehouse.config")


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
    # admin_only: only proxy admins (and their viewers) may log in to the UI.
    ui_access_mode: typing.Literal["all", "admin_only"] = "all"

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
