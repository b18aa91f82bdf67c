"""The distribution installed with pip, checked by the core's install contract: the
hide-secrets type as a guardrails entry and as the callbacks shorthand."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestSecretsInstall(InstallContract):
    distribution = "gatehouse-secrets"
    entry_points = {"secrets": "gatehouse_secrets"}
    configs = {"guardrails.yaml": "unknown guardrail type 'hide-secrets'",
               "callbacks.yaml": "unknown callback 'hide_secrets'"}
