"""The ``aporia`` guardrail's params: where Aporia is and the key to reach it with, from the
config or the environment. There is no default base: each Aporia project has its own."""

from __future__ import annotations

from gatehouse import GuardrailParams
from pydantic import SecretStr


class AporiaParams(GuardrailParams):
    # LiteLLM's docs spell the vendor "Aporio" in places; configs written for it keep working.
    env_api_key = ("APORIA_API_KEY", "APORIO_API_KEY")
    env_api_base = ("APORIA_API_BASE", "APORIO_API_BASE")
    requires_api_key = True
    requires_api_base = True

    # Never None once validated: from params, else from the first variable set.
    api_key: SecretStr
    api_base: str
