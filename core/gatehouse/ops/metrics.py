"""Prometheus metrics under LiteLLM's names and labels, counted from each call's record off the
request path (the call log shows it to ``Metrics.observe``), and ``GET /metrics``.

With several worker processes, each writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multiprocess mode, which the CLI sets up before any worker starts) and a
scrape, whichever worker answers it, adds up every worker's. prometheus-client picks that mode
when it is first imported, so it is imported here only once a ``Metrics`` is built.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from aiohttp import web

from ..access.prices import usage
from ..errors import error_type
from ..guardrails.monitoring import FAILED, NOT_RUN
from .metric_cells import Timing, counting
from .routes import STATUS

if TYPE_CHECKING:
    from ..access.prices import Prices
    from ..guardrails.call import Call, FellBack
    from ..guardrails.monitoring import GuardrailRun
    from ..guardrails.selection import Selection
    from ..proxy.calllog import Outcome
    from ..proxy.router import Deployment, Router

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: calls through a gateway take from a few milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0, float("inf"))
# The gateway's own time and a guardrail's: milliseconds to a vendor's timeout.
SHORT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                 5.0, 10.0, float("inf"))

KEY = ["hashed_api_key", "api_key_alias", "team", "team_alias", "user", "end_user"]
REQUEST = [*KEY, "requested_model"]
DEPLOYMENT = ["requested_model", "litellm_model_name", "model_id", "api_base", "api_provider",
              "hashed_api_key", "api_key_alias", "team", "team_alias"]
WHERE = ["litellm_model_name", "model_id", "api_base", "api_provider"]
PROVIDER_LIMIT = ["model_group", "api_provider", "api_base", "litellm_model_name",
                  "hashed_api_key", "api_key_alias"]
GUARDRAIL = ["guardrail_name", "status", "error_type", "hook_type"]
# litellm_deployment_state values.
HEALTHY, PARTIAL_OUTAGE, OUTAGE = 0, 1, 2
# Statuses that speak of the deployment rather than of the request.
UPSTREAM_FAULTS = frozenset({429, 500, 502, 503, 504})


class Metrics:
    def __init__(self, router: Router, prices: Prices, *, end_user_labels: bool = False):
        import prometheus_client as prom

        self.router = router
        self.prices = prices
        self.end_user_labels = end_user_labels
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR) or None

        def counter(name: str, text: str, labels: list[str]) -> Any:
            return prom.Counter(name, text, labels, registry=self.registry)

        def histogram(name: str, text: str, labels: list[str], buckets: tuple[float, ...]
                      ) -> Any:
            return prom.Histogram(name, text, labels, registry=self.registry, buckets=buckets)

        def gauge(name: str, text: str, labels: list[str]) -> Any:
            # The value a live worker set last: a budget or a limit is a fact about the key,
            # not a sum over workers.
            return prom.Gauge(name, text, labels, registry=self.registry,
                              multiprocess_mode="livemostrecent")

        self.requests = counter("litellm_proxy_total_requests_metric",
                                "Calls made to the gateway", [*REQUEST, "status_code"])
        self.failures = counter("litellm_proxy_failed_requests_metric",
                                "Calls that ended in an error",
                                [*REQUEST, "exception_status", "exception_class"])
        spend_labels = [*REQUEST, "model"]
        self.spend = counter("litellm_spend_metric", "Spend in USD", spend_labels)
        self.total_tokens = counter("litellm_total_tokens_metric", "Prompt + completion tokens",
                                    spend_labels)
        self.input_tokens = counter("litellm_input_tokens_metric", "Prompt tokens",
                                    spend_labels)
        self.output_tokens = counter("litellm_output_tokens_metric", "Completion tokens",
                                     spend_labels)
        latency_labels = [*REQUEST, "model"]
        self.total_latency = histogram(
            "litellm_request_total_latency_metric",
            "Seconds from the request to the end of the reply", latency_labels,
            LATENCY_BUCKETS)
        self.api_latency = histogram("litellm_llm_api_latency_metric",
                                     "Seconds the upstream call took", latency_labels,
                                     LATENCY_BUCKETS)
        self.ttft = histogram("litellm_llm_api_time_to_first_token_metric",
                              "Seconds to a stream's first chunk", latency_labels,
                              LATENCY_BUCKETS)
        self.overhead = histogram(
            "litellm_overhead_latency_metric",
            "Seconds the gateway added to a call (guardrails included)", latency_labels,
            SHORT_BUCKETS)
        self.queue_time = histogram(
            "litellm_request_queue_time_seconds",
            "Seconds from the request's arrival to the upstream call that answered it (the "
            "part of the overhead before the upstream: pre_call guardrails, failed attempts "
            "before a fallback)", latency_labels, SHORT_BUCKETS)
        self.team_budget = gauge("litellm_remaining_team_budget_metric",
                                 "Team budget left, USD", ["team_id", "team_alias"])
        self.team_max_budget = gauge("litellm_team_max_budget_metric", "Team max budget, USD",
                                     ["team_id", "team_alias"])
        self.user_budget = gauge("litellm_remaining_user_budget_metric",
                                 "User budget left, USD", ["user"])
        self.user_max_budget = gauge("litellm_user_max_budget_metric", "User max budget, USD",
                                     ["user"])
        self.key_budget = gauge("litellm_remaining_api_key_budget_metric",
                                "Key budget left, USD", ["hashed_api_key", "api_key_alias"])
        self.key_max_budget = gauge("litellm_api_key_max_budget_metric", "Key max budget, USD",
                                    ["hashed_api_key", "api_key_alias"])
        budget_hours = "Hours until the budget resets"
        self.key_budget_hours = gauge("litellm_api_key_budget_remaining_hours_metric",
                                      budget_hours, ["hashed_api_key", "api_key_alias"])
        self.team_budget_hours = gauge("litellm_team_budget_remaining_hours_metric",
                                       budget_hours, ["team_id", "team_alias"])
        self.key_requests_left = gauge(
            "litellm_remaining_api_key_requests_for_model",
            "Requests the key may still make this minute", ["hashed_api_key", "api_key_alias",
                                                            "model"])
        self.key_tokens_left = gauge(
            "litellm_remaining_api_key_tokens_for_model",
            "Tokens the key may still use this minute", ["hashed_api_key", "api_key_alias",
                                                         "model"])
        self.upstream_requests_left = gauge(
            "litellm_remaining_requests_metric",
            "Requests the upstream still allows (its x-ratelimit-remaining-requests)",
            PROVIDER_LIMIT)
        self.upstream_tokens_left = gauge(
            "litellm_remaining_tokens_metric",
            "Tokens the upstream still allows (its x-ratelimit-remaining-tokens)",
            PROVIDER_LIMIT)
        self.deployment_total = counter("litellm_deployment_total_requests",
                                        "Calls sent to a deployment", DEPLOYMENT)
        self.deployment_success = counter("litellm_deployment_success_responses",
                                          "Calls a deployment answered", DEPLOYMENT)
        self.deployment_failure = counter(
            "litellm_deployment_failure_responses", "Calls a deployment failed",
            [*DEPLOYMENT, "exception_status", "exception_class"])
        self.deployment_per_token = histogram(
            "litellm_deployment_latency_per_output_token",
            "Seconds of the upstream call per completion token", DEPLOYMENT, SHORT_BUCKETS)
        fell_back = [*DEPLOYMENT, "exception_status", "exception_class", "fallback_model"]
        self.fallback_successes = counter(
            "litellm_deployment_successful_fallbacks",
            "Fallbacks that answered a call whose deployment failed", fell_back)
        self.fallback_failures = counter(
            "litellm_deployment_failed_fallbacks",
            "Fallbacks that failed too, for a call whose deployment failed", fell_back)
        self.deployment_state = gauge(
            "litellm_deployment_state", "0 healthy, 1 partial outage, 2 outage",
            WHERE)
        self.guardrail_requests = counter("litellm_guardrail_requests",
                                          "Guardrail runs", GUARDRAIL)
        self.guardrail_errors = counter("litellm_guardrail_errors",
                                        "Guardrail runs that got no verdict", GUARDRAIL)
        self.guardrail_latency = histogram("litellm_guardrail_latency_seconds",
                                           "Seconds a guardrail run took", GUARDRAIL,
                                           SHORT_BUCKETS)
        self.guardrail_added_latency = histogram(
            "gatehouse_guardrail_added_latency_seconds",
            "Seconds a guardrail run held the call up (a demoted run: its budget; a shadow: "
            "none)", ["guardrail_name", "hook_type"], SHORT_BUCKETS)
        self.guardrail_cache = counter(
            "gatehouse_guardrail_verdict_cache", "Texts whose verdict came from the verdict "
            "cache (hit) or from the guardrail (miss)", ["guardrail_name", "result"])
        self.guardrail_shadow_disagreements = counter(
            "gatehouse_guardrail_shadow_disagreements",
            "Shadow runs whose verdict differed from their target's",
            ["guardrail_name", "shadow_of", "hook_type"])
        self.guardrail_budget_exceeded = counter(
            "gatehouse_guardrail_budget_exceeded",
            "Guardrail runs past their latency budget, by what was done about it",
            ["guardrail_name", "hook_type", "action"])
        self.redis_latency = histogram("litellm_redis_latency", "Seconds a Redis ping took",
                                       [], SHORT_BUCKETS)
        self.redis_fails = counter("litellm_redis_fails", "Redis pings that failed", [])
        self.postgres_latency = histogram("litellm_postgres_latency",
                                          "Seconds a database probe took", [], SHORT_BUCKETS)
        self.postgres_fails = counter("litellm_postgres_fails",
                                      "Database probes that failed", [])
        self._children: dict[int, dict[tuple[str, ...], Any]] = {}
        # (request and model labels, status) -> the cells every call of that kind counts in
        self._series: dict[tuple[tuple[str, ...], int], _Series] = {}
        # deployment labels -> the cells of a call the deployment answered
        self._answered: dict[tuple[str, ...], _Answered] = {}
        # guardrail labels -> the cells of a run with that name, status, error type and mode
        self._runs: dict[tuple[str, ...], _RunCells] = {}
        # deployment id -> its labels: litellm_model_name, model_id, api_base, api_provider
        self._where: dict[str, tuple[str, str, str, str]] = {}

    # --- per call, off the request path ------------------------------------------------------

    def _child(self, metric: Any, values: tuple[str, ...]) -> Any:
        """``metric.labels(*values)``, kept: prometheus-client checks and sorts the labels on
        every call of ``labels``, which would be most of what counting a call costs."""
        cache = self._children.setdefault(id(metric), {})
        child = cache.get(values)
        if child is None:
            child = cache[values] = metric.labels(*values)
        return child

    def observe(self, call: Call, selection: Selection, outcome: Outcome, ended: float) -> None:
        principal = call.principal
        team = principal.team or {}
        key = (principal.key_hash or "", principal.key_alias or "", principal.team_id or "",
               team.get("team_alias") or "", principal.user_id or "",
               (call.user or "") if self.end_user_labels else "")
        request = (*key, call.model)
        status = outcome.status
        deployment = self.router.routes.by_id.get(
            call.response_headers.get("x-litellm-model-id", ""))
        timed = (*request, deployment.params.model if deployment is not None else call.model)
        series = self._series.get((timed, status))
        if series is None:
            series = self._series[(timed, status)] = self._new_series(request, timed, status)
        series.requests(1)
        if outcome.error is not None:
            self._child(self.failures, (*request, str(status), error_type(outcome.error))).inc()
        series.total_latency.observe(max(0.0, ended - outcome.started))
        upstream = None
        if outcome.upstream_began is not None and outcome.upstream_ended is not None:
            upstream = outcome.upstream_ended - outcome.upstream_began
            series.api_latency.observe(upstream)
            # Queue time and overhead from the same instants: the one is the other's part
            # before the upstream call.
            series.overhead.observe(max(0.0, ended - outcome.started - upstream))
            series.queue_time.observe(max(0.0, outcome.upstream_began - outcome.started))
            if outcome.first_chunk is not None:
                series.ttft.observe(outcome.first_chunk - outcome.upstream_began)
        cost, completion = self._spend(call, outcome, series)
        if principal.key is not None or principal.team is not None or \
                principal.user is not None:
            self._budgets(call, cost, ended)
        if deployment is not None:
            self._deployment(call, outcome, deployment, key,
                             upstream / completion if upstream is not None and completion
                             else None)
        if call.fell_back is not None:
            self._fallbacks(call.fell_back, key)
        runs = call.guardrail_runs
        if runs:
            self._guardrails(call, runs)

    def _new_series(self, request: tuple[str, ...], timed: tuple[str, ...], status: int
                    ) -> _Series:
        child = self._child
        return _Series(
            counting(child(self.requests, (*request, str(status)))),
            *(Timing(child(metric, timed)) for metric in (
                self.total_latency, self.api_latency, self.overhead, self.queue_time,
                self.ttft)),
            *(counting(child(metric, timed)) for metric in (
                self.input_tokens, self.output_tokens, self.total_tokens, self.spend)))

    def _guardrails(self, call: Call, runs: list[GuardrailRun]) -> None:
        for run in runs:
            status = run.status
            # error_type: how the failure was handled (failed_open / failed_closed).
            labels = (run.name, status, call.verdicts.get(run.name, "") if status == FAILED
                      else "", run.mode)
            cells = self._runs.get(labels)
            if cells is None:
                cells = self._runs[labels] = self._run_cells(labels)
            cells.requests(1)
            if cells.errors is not None:
                cells.errors(1)
            if cells.latency is not None:
                cells.latency.observe(run.duration)
                cells.added_latency.observe(run.added_latency)
            if run.cache_hits or run.cache_misses or run.notes:
                self._guardrail_extras(run)

    def _run_cells(self, labels: tuple[str, ...]) -> _RunCells:
        """Only the children a run with these labels moves: a run that did not fail has no
        error series, one that did not run no latency."""
        name, status, _, mode = labels
        child = self._child
        ran = status != NOT_RUN
        return _RunCells(
            counting(child(self.guardrail_requests, labels)),
            counting(child(self.guardrail_errors, labels)) if status == FAILED else None,
            Timing(child(self.guardrail_latency, labels)) if ran else None,
            Timing(child(self.guardrail_added_latency, (name, mode))) if ran else None)

    def _guardrail_extras(self, run: GuardrailRun) -> None:
        """The verdict cache, shadows and latency budgets, from one run's record."""
        child = self._child
        if run.cache_hits:
            child(self.guardrail_cache, (run.name, "hit")).inc(run.cache_hits)
        if run.cache_misses:
            child(self.guardrail_cache, (run.name, "miss")).inc(run.cache_misses)
        notes = run.notes
        if not notes:
            return
        if notes.get("verdicts_differ"):
            child(self.guardrail_shadow_disagreements,
                  (run.name, notes["shadow_of"], run.mode)).inc()
        if "latency_budget" in notes:
            child(self.guardrail_budget_exceeded,
                  (run.name, run.mode, notes["latency_budget"])).inc()

    def _spend(self, call: Call, outcome: Outcome, series: _Series) -> tuple[float, int]:
        """Count the call's tokens and spend; return the spend and the completion tokens."""
        response = outcome.response if outcome.billed is None else outcome.billed
        failed = outcome.error is not None and outcome.billed is None
        prompt, completion = usage(call.body, response, failed=failed)
        # An upstream's negative count would move the counters backwards.
        prompt, completion = max(prompt, 0), max(completion, 0)
        if not (prompt or completion):
            return 0.0, 0
        cost = max(self.prices.cost(call.model, prompt, completion), 0.0)
        series.input_tokens(prompt)
        series.output_tokens(completion)
        series.total_tokens(prompt + completion)
        series.spend(cost)
        return cost, completion

    def _budgets(self, call: Call, cost: float, now: float) -> None:
        """Budgets left: the principal's rows as known when the call was authenticated, less
        this call's ``cost`` (which they do not hold yet), and the hours from ``now`` to
        their reset; and the key's own rate limits left on this model."""
        principal = call.principal
        key, team, user = principal.key, principal.team, principal.user
        if key is not None and principal.key_hash is not None:
            names = (principal.key_hash, principal.key_alias or "")
            self._budget(self.key_budget, self.key_max_budget, key, names, cost)
            self._hours_left(self.key_budget_hours, key, names, now)
            headers = call.response_headers
            for unit, gauge in (("requests", self.key_requests_left),
                                ("tokens", self.key_tokens_left)):
                own = headers.get(f"x-ratelimit-remaining-{unit}")
                if own is not None and own != (call.upstream_remaining or {}).get(unit):
                    self._child(gauge, (*names, call.model)).set(float(own))
        if team is not None and principal.team_id is not None:
            names = (principal.team_id, team.get("team_alias") or "")
            self._budget(self.team_budget, self.team_max_budget, team, names, cost)
            self._hours_left(self.team_budget_hours, team, names, now)
        if user is not None and principal.user_id is not None:
            self._budget(self.user_budget, self.user_max_budget, user, (principal.user_id,),
                         cost)

    def _budget(self, remaining: Any, maximum: Any, row: dict[str, Any],
                labels: tuple[str, ...], cost: float) -> None:
        max_budget = _number(row.get("max_budget"))
        if max_budget is None:
            return
        self._child(maximum, labels).set(max_budget)
        self._child(remaining, labels).set(
            max_budget - float(row.get("spend") or 0.0) - cost)

    def _hours_left(self, gauge: Any, row: dict[str, Any], labels: tuple[str, ...],
                    now: float) -> None:
        reset = _number(row.get("budget_reset_at"))
        if reset is not None:
            # An overdue reset is the next scheduled run's to make: none of the budget's
            # period is left.
            self._child(gauge, labels).set(max(0.0, (reset - now) / 3600))

    def _where_of(self, deployment: Deployment) -> tuple[str, str, str, str]:
        """litellm_model_name, model_id, api_base, api_provider."""
        where = self._where.get(deployment.id)
        if where is None:
            params = deployment.params
            where = self._where[deployment.id] = (
                params.model, deployment.id, (params.api_base or "").split("?", 1)[0],
                params.model.split("/", 1)[0] if "/" in params.model else "openai")
        return where

    def _deployment(self, call: Call, outcome: Outcome, deployment: Deployment,
                    key: tuple[str, ...], per_token: float | None) -> None:
        """``per_token``: seconds of the upstream call per completion token, when it
        produced any."""
        if outcome.upstream_began is None and not outcome.upstream_failed:
            return  # refused before it reached the deployment
        where = self._where_of(deployment)
        # requested_model, litellm_model_name, model_id, api_base, api_provider, then the key's
        # hash and alias, team and team alias.
        labels = (call.model, *where, *key[:4])
        child = self._child
        status = outcome.status
        if outcome.error is None:
            answered = self._answered.get(labels)
            if answered is None:
                answered = self._answered[labels] = _Answered(
                    counting(child(self.deployment_total, labels)),
                    counting(child(self.deployment_success, labels)),
                    Timing(child(self.deployment_per_token, labels)),
                    child(self.deployment_state, where))
            answered.total(1)
            answered.success(1)
            if per_token is not None:
                answered.per_token.observe(per_token)
            answered.state.set(HEALTHY)
        else:
            self._deployment_failed(labels, where, status, outcome.error)
        remaining = call.upstream_remaining
        if remaining:
            # model_group, api_provider, api_base, litellm_model_name, key hash and alias.
            limit = (deployment.model_name, where[3], where[2], where[0], key[0], key[1])
            for unit, gauge in (("requests", self.upstream_requests_left),
                                ("tokens", self.upstream_tokens_left)):
                value = _number(remaining.get(unit))
                if value is not None:
                    child(gauge, limit).set(value)

    def _deployment_failed(self, labels: tuple[str, ...], where: tuple[str, ...], status: int,
                           error: dict[str, Any]) -> None:
        child = self._child
        child(self.deployment_total, labels).inc()
        child(self.deployment_failure, (*labels, str(status), error_type(error))).inc()
        if status in UPSTREAM_FAULTS:
            child(self.deployment_state, where).set(PARTIAL_OUTAGE)

    def _fallbacks(self, fell_back: FellBack, key: tuple[str, ...]) -> None:
        """The deployment that failed first, as failed (the call itself is counted under the
        fallback that answered it last), and each fallback called: labelled with that
        deployment and its error, as the call's deployment labels would be."""
        failed = self.router.routes.by_id.get(fell_back.deployment_id)
        if failed is None:
            return  # a deployment removed since: no labels to give it
        where = self._where_of(failed)
        self._deployment_failed((fell_back.model, *where, *key[:4]), where, fell_back.status,
                                fell_back.error)
        labels = (fell_back.model, *where, *key[:4], str(fell_back.status),
                  error_type(fell_back.error))
        for model, answered in fell_back.tried:
            self._child(self.fallback_successes if answered else self.fallback_failures,
                        (*labels, model)).inc()

    # --- probes ----------------------------------------------------------------------------

    def probed(self, what: str, seconds: float, ok: bool) -> None:
        """A readiness probe of ``redis`` or ``postgres`` took ``seconds``."""
        latency, fails = ((self.redis_latency, self.redis_fails) if what == "redis"
                          else (self.postgres_latency, self.postgres_fails))
        latency.observe(seconds)
        if not ok:
            fails.inc()

    # --- the scrape --------------------------------------------------------------------------

    def exposition(self) -> bytes:
        prom = self._prom
        if self.multiprocess_dir is None:
            return prom.generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return prom.generate_latest(registry)


@dataclass(slots=True)
class _Series:
    """The cells every call with the same key, team, user, models and status counts in."""

    requests: Callable[[float], None]
    total_latency: Timing
    api_latency: Timing
    overhead: Timing
    queue_time: Timing
    ttft: Timing
    input_tokens: Callable[[float], None]
    output_tokens: Callable[[float], None]
    total_tokens: Callable[[float], None]
    spend: Callable[[float], None]


@dataclass(slots=True)
class _Answered:
    """The cells of a call a deployment answered, per deployment and key."""

    total: Callable[[float], None]
    success: Callable[[float], None]
    per_token: Timing
    state: Any


@dataclass(slots=True)
class _RunCells:
    """The cells of a guardrail run with the same name, status, error type and mode."""

    requests: Callable[[float], None]
    errors: Callable[[float], None] | None
    latency: Timing | None
    added_latency: Timing | None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


METRICS = web.AppKey("metrics", Metrics)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def setup(app: web.Application, metrics: Metrics) -> None:
    app[METRICS] = metrics
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/metrics/", serve_metrics)


async def serve_metrics(request: web.Request) -> web.Response:
    # Each scrape also probes the database and Redis (at most once a second, shared with
    # readiness), so their latency is charted without a probe loop of its own.
    for probe in request.app[STATUS].backends:
        await probe.reachable()
    # Many workers' files to read and add up: off the event loop.
    body = await asyncio.to_thread(request.app[METRICS].exposition)
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE})
