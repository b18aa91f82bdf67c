"""Probes: whether the database and Redis answer (readiness), and ``GET /health``: each
deployment probed with a one-token call, at most once per ``health_check_interval``; in between,
the last result is answered again. With ``background_health_checks`` every deployment is probed
each interval off the request path, and ``GET /health`` only reads the last round. A wildcard
deployment is probed only through its ``model_info.health_check_model``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from ..errors import ClientError, DetailError, error_message
from ..guardrails.call import Call
from ..proxy.providers import UpstreamError
from ..proxy.router import Deployment, Router, shown_params

# Seconds readiness waits for the database or Redis to answer before calling it unreachable,
# and how long its answer is reused.
BACKEND_TIMEOUT = 2.0
BACKEND_EVERY = 1.0

log = logging.getLogger("gatehouse.health")

# A probe waits at most this long (or the deployment's own timeout, if shorter).
PROBE_TIMEOUT = 30.0
PROBES = {
    "chat": ("chat_completion", {"messages": [{"role": "user", "content": "ping"}],
                                 "max_tokens": 1}),
    "completion": ("completion", {"prompt": "ping", "max_tokens": 1}),
    "embedding": ("embedding", {"input": "ping"}),
}


class BackendProbe:
    """Whether the database or Redis answers, asked at most once per ``BACKEND_EVERY``:
    readiness is public, and a flood of probes must not become a flood of queries. Each answer
    is reported to ``observed(name, seconds, ok)`` (the metrics) when given."""

    def __init__(self, name: str, check: Callable[[], Awaitable[object]],
                 observed: Callable[[str, float, bool], None] | None = None):
        self.name = name
        self.check = check
        self.observed = observed
        self._known = (-BACKEND_EVERY, False)
        self._asking = asyncio.Lock()

    async def reachable(self) -> bool:
        async with self._asking:
            checked, ok = self._known
            if time.monotonic() - checked < BACKEND_EVERY:
                return ok
            began = time.perf_counter()
            try:
                async with asyncio.timeout(BACKEND_TIMEOUT):
                    await self.check()
                ok = True
            except Exception:  # noqa: BLE001 - any failure to answer is "unreachable"
                ok = False
            if self.observed is not None:
                self.observed(self.name, time.perf_counter() - began, ok)
            self._known = (time.monotonic(), ok)
            return ok


class Health:
    def __init__(self, router: Router, interval: float, *, background: bool = False):
        self.router = router
        self.interval = interval
        self.background = background
        self._prober: asyncio.Task[None] | None = None
        # deployment id -> (checked at, entry, healthy)
        self._results: dict[str, tuple[float, dict[str, Any], bool]] = {}
        # One probe round at a time: a second request waits and reads the first one's results.
        self._probing = asyncio.Lock()

    def chosen(self, model: str | None, model_id: str | None) -> list[Deployment]:
        deployments = self.router.routes.deployments
        if not deployments:
            raise DetailError(500, "Model list not initialized")
        if model_id:
            found = self.router.routes.by_id.get(model_id)
            if found is None:
                raise DetailError(404, f"Model with ID {model_id} not found")
            return [found]
        return [d for d in deployments
                if model is None or model in (d.model_name, d.params.model)]

    def start(self) -> None:
        if self.background:
            self._prober = asyncio.create_task(self._probe_every_interval(),
                                               name="gatehouse-health-checks")

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)

    async def _probe_every_interval(self) -> None:
        while True:
            deployments = self.router.routes.deployments
            try:
                await self._refresh(deployments, max_age=0.0)
                # Models deleted since are reported no longer.
                served = {d.id for d in deployments}
                for gone in self._results.keys() - served:
                    del self._results[gone]
            except Exception:  # noqa: BLE001 - the next round may fare better
                log.exception("background health check failed")
            await asyncio.sleep(self.interval)

    async def _refresh(self, deployments: list[Deployment], max_age: float) -> None:
        """Probe those of ``deployments`` whose last result is older than ``max_age``."""
        chosen = [d for d in deployments if _probe_model(d) is not None]
        async with self._probing:
            now = time.monotonic()
            stale = [d for d in chosen
                     if now - self._results.get(d.id, (-max_age - 1,))[0] > max_age]
            for deployment, (entry, healthy) in zip(
                    stale, await asyncio.gather(*(self._probe(d) for d in stale))):
                self._results[deployment.id] = (time.monotonic(), entry, healthy)

    async def report(self, model: str | None = None,
                     model_id: str | None = None) -> dict[str, Any]:
        chosen = self.chosen(model, model_id)
        if not self.background:
            await self._refresh(chosen, self.interval)
        results = [self._results[d.id] for d in chosen if d.id in self._results]
        healthy = [entry for _, entry, ok in results if ok]
        unhealthy = [entry for _, entry, ok in results if not ok]
        return {"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)}

    async def _probe(self, deployment: Deployment) -> tuple[dict[str, Any], bool]:
        entry = shown_params(deployment.params)
        upstream = _probe_model(deployment)
        assert upstream is not None
        call_type, body = PROBES.get(str(deployment.model_info.get("mode") or "chat"),
                                     PROBES["chat"])
        call = Call(request_id="health-check", call_type=call_type,  # type: ignore[arg-type]
                    model=deployment.model_name, body=dict(body))
        try:
            provider = (deployment.provider if upstream == deployment.params.model
                        and deployment.provider is not None
                        else self.router.provider_at(deployment, upstream, upstream))
            async with asyncio.timeout(min(PROBE_TIMEOUT, deployment.params.timeout)):
                await provider.complete(call)
        except (UpstreamError, ClientError) as exc:
            return {**entry, "error": error_message(exc.body)}, False
        except TimeoutError:
            return {**entry, "error": "timed out"}, False
        remaining = {k: v for k, v in call.response_headers.items()
                     if k.startswith("x-ratelimit-remaining-")}
        return {**entry, **remaining}, True


def _probe_model(deployment: Deployment) -> str | None:
    """The ``litellm_params.model`` a probe calls: a wildcard's only through
    ``health_check_model``."""
    if deployment.catch_all:
        check = deployment.model_info.get("health_check_model")
        return str(check) if check else None
    return deployment.params.model
