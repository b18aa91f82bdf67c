"""Google Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's own, or
the metadata server) and access tokens from them, through google-auth.

google-auth's token requests are blocking, so they run in a worker thread, one at a time; the
token is reused until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import google.auth
import google.auth.exceptions
import requests
from gatehouse import GuardrailError
from gatehouse.config import ConfigError
from google.auth.transport.requests import Request

SCOPES = ("https://www.googleapis.com/auth/cloud-language",
          "https://www.googleapis.com/auth/cloud-platform")


class AccessTokens:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._credentials: Any = None
        self._session = requests.Session()
        self._request = Request(self._session)
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Find the credentials (reading files, not yet asking for a token). Raises
        ConfigError worded for the operator."""
        try:
            self._credentials, _ = await asyncio.to_thread(google.auth.default, scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigError(
                f"no Google Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS "
                f"to a service-account key file ({exc})") from None

    async def headers(self) -> dict[str, str]:
        """The headers that authorize a call: a valid access token, and the quota project
        when the credentials name one."""
        credentials = self._credentials
        assert credentials is not None  # load() runs at start
        if not credentials.valid:
            async with self._lock:
                if not credentials.valid:
                    await self._refresh(credentials)
        headers = {"Authorization": f"Bearer {credentials.token}"}
        quota_project = getattr(credentials, "quota_project_id", None)
        if quota_project:
            headers["x-goog-user-project"] = quota_project
        return headers

    async def _refresh(self, credentials: Any) -> None:
        request = functools.partial(self._request, timeout=self._timeout)
        try:
            await asyncio.to_thread(credentials.refresh, request)
        except (google.auth.exceptions.RefreshError,
                google.auth.exceptions.TransportError) as exc:
            # The exception's text may quote the token endpoint's answer; its kind is enough.
            raise GuardrailError(f"Google credentials gave no access token "
                                 f"({type(exc).__name__})") from None

    def close(self) -> None:
        self._session.close()
