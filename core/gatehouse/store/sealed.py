"""Secrets at rest: the values of a stored model's ``litellm_params`` (API keys among them),
encrypted with a key derived from ``LITELLM_SALT_KEY`` -- or, without it, from the master
key, as LiteLLM does. Fernet (AES-128-CBC with an HMAC-SHA256 tag, from ``cryptography``):
the standard library has no authenticated cipher, and a tampered value must fail to open
rather than decrypt to something else."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken


class Unsealable(Exception):
    """A stored value that the current key cannot open (the key changed, or it was altered)."""


class Sealer:
    def __init__(self, secret: str):
        digest = hashlib.sha256(b"gatehouse-stored-params\0" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, params: dict[str, Any]) -> dict[str, Any]:
        """Each value encrypted on its own (as JSON, so its type comes back too)."""
        return {name: self._fernet.encrypt(orjson.dumps(value)).decode()
                for name, value in params.items()}

    def open(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return {name: orjson.loads(self._fernet.decrypt(str(value).encode()))
                    for name, value in params.items()}
        except InvalidToken:
            raise Unsealable("a stored value cannot be decrypted with this gateway's key "
                             "(LITELLM_SALT_KEY, else the master key)") from None
