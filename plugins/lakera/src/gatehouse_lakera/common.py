"""What both Lakera APIs share: where Lakera is, the key to reach it with, and checking that
its reply has the shape we rely on."""

from __future__ import annotations

import os
from typing import Any, ClassVar, TypeVar

from gatehouse import Guardrail, GuardrailError, GuardrailParams
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

DEFAULT_API_BASE = "https://api.lakera.ai"


class VendorReply(BaseModel):
    """A model of what Lakera answers: strict, so ``"flagged": "false"`` is an error rather than
    a verdict; fields we do not read are ignored."""

    model_config = ConfigDict(strict=True)


ReplyModel = TypeVar("ReplyModel", bound=VendorReply)


class LakeraParams(GuardrailParams):
    # Never None once validated: params, then the environment, then (for the base) the default.
    api_key: SecretStr
    api_base: str

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("api_key") is None:
            data["api_key"] = os.environ.get("LAKERA_API_KEY")
            if not data["api_key"]:
                raise ValueError("no Lakera API key: set api_key in the guardrail's params "
                                 "or the LAKERA_API_KEY environment variable")
        if data.get("api_base") is None:
            data["api_base"] = os.environ.get("LAKERA_API_BASE") or DEFAULT_API_BASE
        if not str(data["api_base"]).startswith(("http://", "https://")):
            raise ValueError(f"api_base must be an http(s) URL, got {data['api_base']!r}")
        return data


class LakeraGuardrail(Guardrail):
    """A guardrail that posts to one Lakera endpoint, ``path`` under ``api_base``."""

    Params = LakeraParams
    params: LakeraParams
    path: ClassVar[str]

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        self._url = self.params.api_base.rstrip("/") + self.path
        self._headers = {"Authorization": f"Bearer {self.params.api_key.get_secret_value()}"}

    async def _ask(self, payload: dict[str, Any], model: type[ReplyModel]
                   ) -> tuple[dict[str, Any], ReplyModel]:
        """Post ``payload``; return Lakera's reply as sent and as ``model`` read it."""
        raw = await self.post_json(self._url, payload, self._headers)
        try:
            return raw, model.model_validate(raw)
        except ValidationError as exc:
            # Name the field only: the values may hold the caller's text.
            where = ".".join(str(p) for p in exc.errors()[0]["loc"]) or "body"
            raise GuardrailError(
                f"guardrail {self.name!r}: {self.path} answered an unexpected reply "
                f"({where}: {exc.errors()[0]['type']})") from None
