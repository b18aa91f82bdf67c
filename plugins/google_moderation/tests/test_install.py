"""The installed distribution, checked by the core's install contract on the reference's
callbacks block (thresholds in the code's spelling, and in the docs' spelling), with
Application Default Credentials from a service-account key file."""

from __future__ import annotations

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from gatehouse.testing import InstallContract


class TestGoogleModerationInstall(InstallContract):
    distribution = "gatehouse-google-moderation"
    entry_points = {"google_moderation": "gatehouse_google_moderation"}
    configs = {"callbacks.yaml": "unknown callback 'google_text_moderation'",
               "docs_spelling.yaml": "unknown callback 'google_text_moderation'"}
    refused = {'litellm_settings:\n  callbacks: ["google_text_moderation"]\n': (
        "guardrail 'google_text_moderation' failed to start: no Google Application Default "
        "Credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file "
        "(File /nowhere/service-account.json was not found.)",
        {"GOOGLE_APPLICATION_CREDENTIALS": "/nowhere/service-account.json"})}

    @pytest.fixture(autouse=True)
    def application_default_credentials(self, tmp_path_factory, signing_key, monkeypatch):
        """GOOGLE_APPLICATION_CREDENTIALS names a service-account key file: found at start,
        never used by check-config, which asks Google for nothing."""
        path = tmp_path_factory.mktemp("adc") / "service-account.json"
        path.write_bytes(orjson.dumps({
            "type": "service_account", "project_id": "example-project",
            "private_key_id": "0123", "client_email": "sa@example-project.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": "http://127.0.0.1:9/token",
            "private_key": signing_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode()}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
