"""Secrets read from a key manager at start, never on the call path.

Two ways in, as LiteLLM has them:

* ``USE_AWS_KMS=True``: before the config is read, the CLI decrypts the environment's KMS
  ciphertexts in place (:func:`gatehouse.secret_managers.aws.decrypt_environment`).
* ``general_settings.key_management_system``: the config's ``os.environ/NAME`` references are
  read from the manager it names (:func:`open_manager`), one :class:`SecretManager` each.

Errors name the variable and what went wrong, never a value.
"""

from __future__ import annotations

import abc
import importlib
from typing import ClassVar

# key_management_system -> "module:class"; the AWS ones need the optional botocore.
MANAGERS = {
    "aws_kms": "aws:AwsKms",
    "aws_secret_manager": "aws:AwsSecretsManager",
    "hashicorp_vault": "vault:HashicorpVault",
}


class SecretManagerError(Exception):
    """A secret that cannot be had, worded for the operator; it never holds a secret."""


class SecretManager(abc.ABC):
    """Where ``os.environ/NAME`` is read when the config hosts ``NAME`` in a key manager."""

    name: ClassVar[str]  # as key_management_system spells it

    @classmethod
    @abc.abstractmethod
    def from_environment(cls) -> SecretManager:
        """The manager set up from its environment variables, as LiteLLM names them."""

    @abc.abstractmethod
    def read(self, name: str) -> str | None:
        """The secret ``name``, or None when the manager has none by that name; any other
        failure is a SecretManagerError."""


def open_manager(system: str) -> SecretManager:
    """The manager ``key_management_system: <system>`` names (one of MANAGERS)."""
    module, _, cls = MANAGERS[system].partition(":")
    manager: type[SecretManager] = getattr(
        importlib.import_module(f"{__name__}.{module}"), cls)
    return manager.from_environment()
