"""Google, faked: an OAuth token endpoint that checks the service account's signed assertion
and hands out access tokens, and Cloud Natural Language's ``documents:moderateText``, scoring
text as the tests say. The gateway finds the service account the way it would in production,
through ``GOOGLE_APPLICATION_CREDENTIALS``."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import gatehouse_google_moderation
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SERVICE_ACCOUNT = "gatehouse-test@example-project.iam.gserviceaccount.com"
PLUGIN = [("google_moderation", gatehouse_google_moderation)]


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class TokenEndpoint:
    """Google's OAuth token endpoint for one service account: grants a new access token for
    each correctly signed JWT-bearer assertion; ``status`` other than 200 refuses."""

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self.public_key = public_key
        self.assertions: list[dict[str, Any]] = []
        self.issued: list[str] = []
        self.status = 200
        self.expires_in = 3600
        self.url = ""
        self._numbers = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/token", self._grant)

    async def _grant(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header, payload, signature = str(form["assertion"]).split(".")
        self.public_key.verify(_b64(signature), f"{header}.{payload}".encode(),
                               padding.PKCS1v15(), hashes.SHA256())
        claims = orjson.loads(_b64(payload))
        self.assertions.append(claims)
        if self.status != 200:
            return web.json_response({"error": "invalid_grant"}, status=self.status)
        token = f"ya29.fake-access-token-{next(self._numbers)}"
        self.issued.append(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in,
                                  "token_type": "Bearer"})


@pytest_asyncio.fixture
async def token_endpoint(aiohttp_server, signing_key) -> TokenEndpoint:
    endpoint = TokenEndpoint(signing_key.public_key())
    server = await aiohttp_server(endpoint.app)
    endpoint.url = str(server.make_url("/token"))
    return endpoint


@pytest.fixture
def credentials_file(tmp_path: Path, signing_key, token_endpoint, monkeypatch) -> Path:
    """A service-account key file whose ``token_uri`` is the fake token endpoint, named by
    GOOGLE_APPLICATION_CREDENTIALS."""
    pem = signing_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    path = tmp_path / "service-account.json"
    path.write_bytes(orjson.dumps({
        "type": "service_account", "project_id": "example-project",
        "private_key_id": "0123456789abcdef", "private_key": pem,
        "client_email": SERVICE_ACCOUNT, "client_id": "1234567890",
        "token_uri": token_endpoint.url}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


def scores(**confidences: float) -> dict[str, Any]:
    """A moderateText answer: each category name (as Google writes it) with its confidence."""
    return {"moderationCategories": [{"name": name, "confidence": confidence}
                                     for name, confidence in confidences.items()],
            "languageCode": "en", "languageSupported": True}


@pytest_asyncio.fixture
async def google(fake_vendor, credentials_file):
    """The core's FakeVendor as Cloud Natural Language: a low score in every category until a
    test sets ``reply`` or ``decide``."""
    fake = await fake_vendor(reply=scores(Toxic=0.05, Insult=0.02))
    fake.scores = scores
    return fake


@pytest.fixture
def with_callback(gateway, google):
    """A gateway configured the reference's way: ``callbacks: ["google_text_moderation"]`` and
    its settings beside it, the endpoint pointed at the fake."""

    async def make(**settings: Any):
        return await gateway({"litellm_settings": {
            "callbacks": ["google_text_moderation"], "google_moderation_api_base": google.url,
            **settings}}, plugins=PLUGIN)

    return make

