"""The model router: each ``model_list`` name with its deployments, one provider instance per
deployment on the gateway's shared HTTP session, taken in turn (round-robin)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Iterator

from ..config import ConfigError, ModelEntry
from ..errors import ClientError
from ..guardrails.call import Call
from .providers import Provider
from .providers.mock import FixedReplyProvider

if TYPE_CHECKING:
    import aiohttp

    from ..plugins import Registered


class Router:
    def __init__(self, model_list: list[ModelEntry], providers: dict[str, Registered],
                 source: str):
        self._deployments: dict[str, list[tuple[str, Any, type[Provider]]]] = {}
        unknown = []
        for i, entry in enumerate(model_list):
            registered = providers.get(entry.params.provider)
            if registered is None:
                unknown.append(
                    f"model_list[{i}].{entry.written('params')}.model: unknown provider "
                    f"{entry.params.provider!r} in {entry.params.model!r}; installed providers: "
                    f"{', '.join(sorted(providers)) or 'none'}")
                continue
            self._deployments.setdefault(entry.model_name, []).append(
                (entry.model_name, entry.params, registered.obj))
        if unknown:
            raise ConfigError.in_file(source, *unknown)
        self.model_names = tuple(self._deployments)
        self._providers: list[Provider] = []
        self._round_robin: dict[str, Iterator[Provider]] = {}
        self.started = False

    def start(self, http: aiohttp.ClientSession) -> None:
        """Make the providers, on the one pooled session every upstream call shares."""
        for name, deployments in self._deployments.items():
            providers = [cls(model_name, params, http) for model_name, params, cls in deployments]
            self._providers.extend(providers)
            self._round_robin[name] = itertools.cycle(providers)
        self.started = True

    async def close(self) -> None:
        for provider in self._providers:
            await provider.close()

    def provider_for(self, call: Call, mock_response: str | None = None) -> Provider:
        rotation = self._round_robin.get(call.model)
        if rotation is None:
            raise ClientError(
                400, f"Invalid model name passed in model={call.model}. "
                     f"Call /v1/models to view available models.",
                param="model")
        provider = next(rotation)
        if mock_response is not None:
            return FixedReplyProvider(mock_response, provider.model_name, provider.params,
                                      provider.http)
        return provider

    async def complete(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A chat completion on one of the gateway's own models, without guardrails -- for
        plugins that ask a model (e.g. a Llama Guard deployment). Raises UpstreamError."""
        call = Call(request_id=request_id, call_type="chat_completion", model=model_name,
                    body={**body, "stream": False})
        return (await self.provider_for(call).complete(call)).data

    async def moderate(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A moderation (``POST /moderations``, ``body`` holding its ``input``) on one of the
        gateway's own models -- for plugins that ask a moderation model. Raises
        UpstreamError."""
        call = Call(request_id=request_id, call_type="moderation", model=model_name,
                    body=dict(body))
        return (await self.provider_for(call).complete(call)).data
