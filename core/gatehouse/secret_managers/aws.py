"""AWS: KMS ciphertexts in the environment (``USE_AWS_KMS``, and ``key_management_system:
aws_kms``) and Secrets Manager (``aws_secret_manager``).

botocore signs the requests and finds credentials the way every AWS tool does (``AWS_*``
variables, profiles, instance roles; ``AWS_ENDPOINT_URL_KMS`` and friends point it elsewhere).
It comes with the ``gatehouse-proxy[aws]`` extra, and is imported only when asked for.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Collection
from typing import Any, ClassVar

from . import SecretManager, SecretManagerError

EXTRA = "gatehouse-proxy[aws]"
# A variable named LITELLM_SECRET_AWS_KMS_<NAME> (in any case) is decrypted into <NAME>; one
# whose value starts aws_kms/ is decrypted in place.
ENV_PREFIX = "LITELLM_SECRET_AWS_KMS_"
VALUE_PREFIX = "aws_kms/"


def decrypt_environment() -> list[str]:
    """What ``USE_AWS_KMS=True`` does before the config is read: every KMS ciphertext of the
    environment decrypted into ``os.environ``, where this process and its children see it.
    Returns the names set; any value that cannot be decrypted stops it, before any is set."""
    targets = {}
    for name, value in os.environ.items():
        if name.upper().startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            targets[name] = name[len(ENV_PREFIX):]
        elif value.startswith(VALUE_PREFIX):
            targets[name] = name
    kms = AwsKms(_client("kms", "USE_AWS_KMS"))
    plain, problems = {}, []
    for source, target in targets.items():
        try:
            plain[target] = kms.decrypt(os.environ[source])
        except SecretManagerError as exc:
            problems.append(f"USE_AWS_KMS: cannot decrypt {source}: {exc}")
    if problems:
        raise SecretManagerError("\n".join(problems))
    os.environ.update(plain)
    return sorted(plain)


class _AwsManager(SecretManager):
    service: ClassVar[str]  # botocore's name for it

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_environment(cls) -> _AwsManager:
        return cls(_client(cls.service, f"key_management_system: {cls.name}"))


class AwsKms(_AwsManager):
    """``aws_kms``: the hosted variables hold KMS ciphertexts (base64, ``aws_kms/`` optional)."""

    name = "aws_kms"
    service = "kms"

    def read(self, name: str) -> str | None:
        value = os.environ.get(name)
        return None if value is None else self.decrypt(value)

    def decrypt(self, ciphertext: str) -> str:
        try:
            blob = base64.b64decode(ciphertext.removeprefix(VALUE_PREFIX), validate=True)
        except binascii.Error:
            raise SecretManagerError("the value is not a base64 KMS ciphertext") from None
        reply = _call(lambda: self.client.decrypt(CiphertextBlob=blob))
        try:
            return reply["Plaintext"].decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SecretManagerError("it decrypts to bytes that are not UTF-8 text") from None


class AwsSecretsManager(_AwsManager):
    """``aws_secret_manager``: ``os.environ/NAME`` is the secret named NAME, as a string."""

    name = "aws_secret_manager"
    service = "secretsmanager"

    def read(self, name: str) -> str | None:
        reply = _call(lambda: self.client.get_secret_value(SecretId=name),
                      absent=("ResourceNotFoundException",))
        if reply is None:
            return None
        if "SecretString" not in reply:
            raise SecretManagerError("the secret is binary; store it as a string")
        return reply["SecretString"]


def _client(service: str, wanted_by: str) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise SecretManagerError(
            f"{wanted_by} needs botocore, which gatehouse installs with its aws extra: "
            f"pip install '{EXTRA}'") from None
    region = os.environ.get("AWS_REGION_NAME")
    if not region:
        raise SecretManagerError("Missing required environment variable - AWS_REGION_NAME")
    return botocore.session.get_session().create_client(service, region_name=region)


def _call(call: Callable[[], Any], absent: Collection[str] = ()) -> Any:
    """``call()``'s reply, None for an error code in ``absent``; other failures are worded from
    AWS's error code and message, which never echo what was sent."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in absent:
            return None
        raise SecretManagerError(f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise SecretManagerError(str(exc)) from None
