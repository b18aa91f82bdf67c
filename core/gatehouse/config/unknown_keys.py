"""Keys the models do not know, in the top level, ``general_settings``, ``settings`` and
``router_settings``: LiteLLM's that gatehouse does not implement are warned about, or refused
where ignoring them would weaken the gateway; near misses of known keys are refused as typos."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from .file import Config
from .general_settings import GeneralSettings
from .guardrails import OBSERVER_CALLBACKS
from .keys import model_keys
from .problems import ConfigError, did_you_mean
from .settings import Settings

# One logger for the whole config, under the name operators know it by.
log = logging.getLogger("gatehouse.config")


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
