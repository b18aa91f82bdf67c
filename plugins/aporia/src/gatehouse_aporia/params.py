"""The ``aporia`` guardrail's params: where Aporia is and the key to reach it with, from the
config or the environment. There is no default base: each Aporia project has its own."""

from __future__ import annotations

import os
from typing import Any

from gatehouse import GuardrailParams
from pydantic import SecretStr, model_validator

# LiteLLM's docs spell the vendor "Aporio" in places; configs written for it keep working.
ENVIRONMENT = {"api_key": ("APORIA_API_KEY", "APORIO_API_KEY"),
               "api_base": ("APORIA_API_BASE", "APORIO_API_BASE")}


class AporiaParams(GuardrailParams):
    # Never None once validated: from params, else from the first variable set.
    api_key: SecretStr
    api_base: str

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for field, variables in ENVIRONMENT.items():
            if data.get(field) is None:
                data[field] = next((os.environ[v] for v in variables if os.environ.get(v)), None)
            if data[field] is None:
                raise ValueError(f"no Aporia {field}: set {field} in the guardrail's params or "
                                 f"the {' or '.join(variables)} environment variable")
        if not str(data["api_base"]).startswith(("http://", "https://")):
            raise ValueError(f"api_base must be an http(s) URL, got {data['api_base']!r}")
        return data
