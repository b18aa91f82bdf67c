"""The installed distribution, checked by the core's install contract on the reference's
config blocks (a guardrails entry, and the callbacks shorthand with its moderation model)."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestOpenAIModerationInstall(InstallContract):
    distribution = "gatehouse-openai-moderation"
    entry_points = {"openai_moderation": "gatehouse_openai_moderation"}
    configs = {"guardrails.yaml": "unknown guardrail type 'openai_moderation'",
               "callbacks.yaml": "unknown callback 'openai_moderations'"}
    env = {"OPENAI_API_KEY": "sk-x"}
    refused = {
        "guardrails:\n  - guardrail_name: mod\n    litellm_params: {guardrail: openai_moderation}\n":
            ("OpenAI Moderation: api_key is required. Set OPENAI_API_KEY environment variable or "
             "pass it in configuration.", {"OPENAI_API_KEY": None}),
        'litellm_settings:\n  callbacks: ["openai_moderations"]\n':
            ("openai_moderations_model_name 'text-moderation-latest' is not a model_name in "
             "model_list", {}),
    }
