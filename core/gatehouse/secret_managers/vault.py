"""``hashicorp_vault``: secrets read from Vault's KV v2 engine at ``secret/``.

Each ``os.environ/NAME`` is the secret at ``{HCP_VAULT_ADDR}/v1/[{HCP_VAULT_NAMESPACE}/]
secret/data/NAME`` holding ``{"key": "<value>"}``, read with a token: ``HCP_VAULT_TOKEN``, or
one got by logging in with a TLS client certificate (``HCP_VAULT_CLIENT_CERT`` and
``HCP_VAULT_CLIENT_KEY``, ``HCP_VAULT_CERT_ROLE`` naming the role). Plain blocking HTTP: it runs
once, at start, before the gateway serves anything.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import SecretManager, SecretManagerError

TIMEOUT = 10.0


class HashicorpVault(SecretManager):
    name = "hashicorp_vault"

    def __init__(self, addr: str, token: str, namespace: str | None = None,
                 context: ssl.SSLContext | None = None) -> None:
        self.addr = addr.rstrip("/")
        self.token = token
        self.namespace = namespace
        self.context = context

    @classmethod
    def from_environment(cls) -> HashicorpVault:
        addr = os.environ.get("HCP_VAULT_ADDR")
        if not addr:
            raise SecretManagerError("hashicorp_vault needs HCP_VAULT_ADDR (Vault's address)")
        namespace = os.environ.get("HCP_VAULT_NAMESPACE") or None
        cert, key = os.environ.get("HCP_VAULT_CLIENT_CERT"), os.environ.get("HCP_VAULT_CLIENT_KEY")
        if cert and key:
            vault = cls(addr, "", namespace, _client_context(cert, key))
            vault.token = vault._login(os.environ.get("HCP_VAULT_CERT_ROLE"))
            return vault
        token = os.environ.get("HCP_VAULT_TOKEN")
        if not token:
            raise SecretManagerError("hashicorp_vault needs HCP_VAULT_TOKEN, or "
                                     "HCP_VAULT_CLIENT_CERT and HCP_VAULT_CLIENT_KEY")
        return cls(addr, token, namespace)

    def read(self, name: str) -> str | None:
        path = f"secret/data/{urllib.parse.quote(name, safe='')}"
        if self.namespace:
            path = f"{self.namespace.strip('/')}/{path}"
        reply = self._request(path, headers={"X-Vault-Token": self.token})
        if reply is None:
            return None
        value = _dig(reply, "data", "data", "key")
        if not isinstance(value, str):
            raise SecretManagerError('the secret has no "key" field holding a string '
                                     '(store it as {"key": "<value>"})')
        return value

    def _login(self, role: str | None) -> str:
        reply = self._request("auth/cert/login", body={"name": role} if role else {})
        token = _dig(reply, "auth", "client_token")
        if not isinstance(token, str):
            raise SecretManagerError("the certificate login at auth/cert/login gave no token")
        return token

    def _request(self, path: str, *, headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> Any:
        """Vault's JSON reply at ``/v1/{path}`` (a POST of ``body`` if given), None for a 404."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.addr}/v1/{path}", data=data,
                                         headers={**(headers or {}),
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise SecretManagerError(f"Vault answered HTTP {exc.code}{_errors(exc)}") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SecretManagerError(f"cannot read Vault at {self.addr}: {reason}") from None


def _client_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise SecretManagerError(f"cannot load HCP_VAULT_CLIENT_CERT and "
                                 f"HCP_VAULT_CLIENT_KEY: {exc.strerror or exc}") from None
    return context


def _errors(exc: urllib.error.HTTPError) -> str:
    """Vault's ``errors`` list, which names what failed (``permission denied``)."""
    try:
        errors = json.loads(exc.read()).get("errors") or []
    except (OSError, ValueError, AttributeError):
        return ""
    return ": " + "; ".join(str(error).strip() for error in errors) if errors else ""


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
