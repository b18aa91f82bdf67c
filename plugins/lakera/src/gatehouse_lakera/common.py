"""What both Lakera APIs share: where Lakera is, the key to reach it with, and the strictness
its replies are read with."""

from __future__ import annotations

from typing import ClassVar

from gatehouse import Guardrail, GuardrailParams
from pydantic import BaseModel, ConfigDict, SecretStr


class VendorReply(BaseModel):
    """A model of what Lakera answers: strict, so ``"flagged": "false"`` is an error rather than
    a verdict; fields we do not read are ignored."""

    model_config = ConfigDict(strict=True)


class LakeraParams(GuardrailParams):
    env_api_key = ("LAKERA_API_KEY",)
    env_api_base = ("LAKERA_API_BASE",)
    default_api_base = "https://api.lakera.ai"
    requires_api_key = True

    # Never None once validated: params, then the environment, then (for the base) the default.
    api_key: SecretStr
    api_base: str


class LakeraGuardrail(Guardrail):
    """A guardrail that posts to one Lakera endpoint, ``path`` under ``api_base``."""

    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True

    vendor = "Lakera"
    Params = LakeraParams
    params: LakeraParams
    path: ClassVar[str]

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._url = self.params.api_base.rstrip("/") + self.path
        self._headers = {"Authorization": f"Bearer {self.params.api_key.get_secret_value()}"}
