"""How the guardrail proves itself to AWS: a bearer token, or SigV4 with credentials found as
every AWS tool finds them (explicit keys, a profile, an assumed role, the default chain).

botocore does the finding, the assuming and the signing. Finding and refreshing may block
(files, STS, instance metadata), so it runs in a thread: once at start, and again only when
assumed-role credentials near their expiry.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials

if TYPE_CHECKING:
    from .guardrail import BedrockParams

SERVICE = "bedrock"
DEFAULT_SESSION_NAME = "gatehouse-bedrock-guardrail"


class NoCredentials(Exception):
    """No way to sign was found; the message says where the guardrail looked."""


class Signer:
    """Headers that authenticate one request to Bedrock."""

    def __init__(self, params: BedrockParams, region: str) -> None:
        self._params = params
        self._region = region
        self._credentials: Credentials | None = None
        self._bearer = params.api_key.get_secret_value() if params.api_key else None

    async def start(self) -> None:
        if self._bearer is None:
            self._credentials = await asyncio.to_thread(self._find)

    async def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._bearer is not None:
            return {**headers, "Authorization": f"Bearer {self._bearer}"}
        credentials = self._credentials
        assert credentials is not None, "start() finds the credentials"
        if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
            frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
        else:
            frozen = credentials.get_frozen_credentials()
        return sign(frozen, self._region, method, url, body, headers)

    def _find(self) -> Credentials:
        params = self._params
        session = botocore.session.Session(profile=params.aws_profile_name)
        base: Credentials | None
        if params.aws_access_key_id and params.aws_secret_access_key:
            base = Credentials(params.aws_access_key_id,
                               params.aws_secret_access_key.get_secret_value(),
                               params.aws_session_token.get_secret_value()
                               if params.aws_session_token else None)
        else:
            base = session.get_credentials()
        if params.aws_role_name:
            return self._assumed(session, base)
        if base is None:
            raise NoCredentials(
                "no AWS credentials: set api_key (a Bedrock API key) or aws_access_key_id and "
                "aws_secret_access_key, aws_profile_name or aws_role_name in the guardrail's "
                "params, or provide them as every AWS tool reads them (AWS_ACCESS_KEY_ID, "
                "~/.aws, instance role)")
        return base

    def _assumed(self, session: botocore.session.Session, base: Credentials | None
                 ) -> RefreshableCredentials:
        params = self._params
        web_token = (params.aws_web_identity_token.get_secret_value()
                     if params.aws_web_identity_token else None)
        if base is None and web_token is None:
            raise NoCredentials(f"aws_role_name {params.aws_role_name} needs credentials to "
                                f"assume it with, or aws_web_identity_token")
        client_args: dict[str, Any] = {"region_name": self._region,
                                       "endpoint_url": params.aws_sts_endpoint}
        if base is not None and web_token is None:
            frozen = base.get_frozen_credentials()
            client_args.update(aws_access_key_id=frozen.access_key,
                               aws_secret_access_key=frozen.secret_key,
                               aws_session_token=frozen.token)
        sts = session.create_client("sts", **client_args)
        role = {"RoleArn": params.aws_role_name,
                "RoleSessionName": params.aws_session_name or DEFAULT_SESSION_NAME}

        def fetch() -> dict[str, Any]:
            if web_token is not None:
                answer = sts.assume_role_with_web_identity(**role, WebIdentityToken=web_token)
            else:
                answer = sts.assume_role(**role)
            found = answer["Credentials"]
            return {"access_key": found["AccessKeyId"], "secret_key": found["SecretAccessKey"],
                    "token": found["SessionToken"],
                    "expiry_time": found["Expiration"].isoformat()}

        return RefreshableCredentials.create_from_metadata(
            metadata=fetch(), refresh_using=fetch, method="sts-assume-role")


def sign(credentials: ReadOnlyCredentials, region: str, method: str, url: str, body: bytes,
         headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the SigV4 headers for this request."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())
