"""``guardrails``: one entry per guardrail; and which names in ``callbacks`` are LiteLLM's logging
callbacks rather than guardrails."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, field_validator

from .keys import AliasedModel


class GuardrailEntry(AliasedModel):
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
