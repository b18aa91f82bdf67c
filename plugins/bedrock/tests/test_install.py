"""The installed distribution, checked by the core's install contract on guardrails.yaml."""

from __future__ import annotations

from gatehouse.testing import InstallContract


class TestBedrockInstall(InstallContract):
    distribution = "gatehouse-bedrock"
    entry_points = {"bedrock": "gatehouse_bedrock"}
    configs = {"guardrails.yaml": "unknown guardrail type 'bedrock'"}
    env = {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIAINSTALLTEST00001",
           "AWS_SECRET_ACCESS_KEY": "install-test-secret", "AWS_EC2_METADATA_DISABLED": "true"}
