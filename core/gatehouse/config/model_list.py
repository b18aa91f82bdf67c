"""``model_list``: the deployments, how to reach each (``litellm_params``), and the provider a
model name names or implies."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator

from .keys import AliasedModel


class ModelParams(BaseModel):
    """How to reach one deployment. Provider-specific extras are kept in ``model_extra``."""

    model_config = ConfigDict(extra="allow")

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(default=600.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _names_a_model(cls, value: str) -> str:
        if not value.strip() or value.startswith("/") or value.endswith("/"):
            raise ValueError("expected '<provider>/<model>', e.g. 'openai/gpt-4o' or "
                             "'mock/echo', or a bare OpenAI model name such as 'gpt-4o'")
        return value

    @property
    def provider(self) -> str:
        return provider_of(self.model)

    @property
    def upstream_model(self) -> str:
        return self.model.split("/", 1)[1] if "/" in self.model else self.model


# LiteLLM infers the provider of a bare model name (``model: gpt-3.5-turbo``) from its own
# catalogue. These prefixes cover the bare names its users write for other providers, so such
# a name is refused as a provider not installed rather than sent to OpenAI; any other bare
# name is OpenAI's.
BARE_NAME_PROVIDERS = (("claude", "anthropic"), ("gemini", "gemini"), ("command", "cohere"),
                       ("mistral", "mistral"), ("llama", "ollama"))


def provider_of(model: str) -> str:
    """The provider a ``litellm_params.model`` (or a requested name) names or implies."""
    if "/" in model:
        return model.split("/", 1)[0]
    return next((provider for prefix, provider in BARE_NAME_PROVIDERS
                 if model.startswith(prefix)), "openai")


class ModelEntry(AliasedModel):
    model_name: str
    params: ModelParams = Field(validation_alias=AliasChoices("params", "litellm_params"))
    model_info: dict[str, Any] = Field(default_factory=dict)
