"""What tokens cost: the bundled price table, a model's own prices from ``model_list``, and how
many tokens a call used (the upstream's count, or an estimate from the text)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson

from ..config.model_list import ModelEntry, ModelParams
from ..guardrails.text import request_texts, response_texts

CHARS_PER_TOKEN = 4  # estimate when the upstream reports no usage (streams)


@functools.cache  # read once: cost() falls back on it, and must not read a file per call
def bundled_prices() -> dict[str, tuple[float, float]]:
    raw = orjson.loads(resources.files(__package__).joinpath("prices.json").read_bytes())
    return {name: (float(p[0]), float(p[1])) for name, p in raw.items()
            if not name.startswith("_")}


class Prices:
    """Input and output price per token of each model name the gateway serves."""

    def __init__(self, model_list: list[ModelEntry]):
        self.by_model: dict[str, tuple[float, float]] = {}
        for entry in model_list:
            self.add(entry.model_name, entry.params, entry.model_info)

    def add(self, model_name: str, params: ModelParams, model_info: dict[str, Any]) -> None:
        """Price ``model_name`` as its deployment says, else as the bundled table does."""
        extra = {**(params.model_extra or {}), **model_info}
        fallback = bundled_prices().get(params.upstream_model, (0.0, 0.0))
        self.by_model[model_name] = (float(extra.get("input_cost_per_token", fallback[0])),
                                     float(extra.get("output_cost_per_token", fallback[1])))

    def knows(self, model: str) -> bool:
        return model in self.by_model or model in bundled_prices()

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price_in, price_out = self.by_model.get(model) or bundled_prices().get(model, (0.0, 0.0))
        return prompt_tokens * price_in + completion_tokens * price_out


def usage(body: dict[str, Any], response: Any, *, failed: bool = False) -> tuple[int, int]:
    """Prompt and completion tokens: the upstream's figures, or an estimate from the text
    (none for a call that failed before the upstream answered)."""
    reported = response.get("usage") if isinstance(response, dict) else None
    if isinstance(reported, dict) and reported.get("prompt_tokens") is not None:
        return (int(reported.get("prompt_tokens") or 0),
                int(reported.get("completion_tokens") or 0))
    if failed:
        return 0, 0
    # ``user`` travels upstream for the provider's abuse monitoring; the model never reads it.
    prompt = sum(len(t) for t in request_texts({**body, "user": None})) // CHARS_PER_TOKEN
    completion = 0
    if isinstance(response, dict):
        completion = sum(len(t) for t in response_texts(response)) // CHARS_PER_TOKEN
    return prompt, completion
