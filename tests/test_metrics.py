"""Prometheus metrics: scraped from a real ``gatehouse run --workers 2`` after real calls, the
counts exact across both workers; and the parts of ``/metrics`` a scrape of one process shows
(auth, labels, the backends' latency)."""

import asyncio
import os
import signal
import socket
import sys
import time
from datetime import datetime

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gatehouse.app import GATEWAY
from gatehouse.testing import FakeUpstream

from admin_kit import ADMIN, MASTER, PRICED, admin_get, admin_post, bearer, settle

# The fake upstream answers with 5 prompt tokens and one completion token per word.
REPLY = "four words of reply"
PROMPT_TOKENS, COMPLETION_TOKENS = 5, 4
COST = PROMPT_TOKENS * PRICED["input_cost_per_token"] + \
    COMPLETION_TOKENS * PRICED["output_cost_per_token"]
UPSTREAM_LIMITS = {"x-ratelimit-remaining-requests": "99", "x-ratelimit-remaining-tokens": "9000"}
GUARD = {"guardrail_name": "no-forbidden", "params": {
    "guardrail": "banned_keywords", "mode": "pre_call", "banned_keywords_list": ["forbidden"],
    "default_on": True}}


def samples(text, name, **labels):
    """Every sample called ``name`` whose labels include ``labels``."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                found.append(sample)
    return found


def total(text, name, **labels):
    return sum(sample.value for sample in samples(text, name, **labels))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_base():
    return f"http://127.0.0.1:{free_port()}/v1"


async def wait_until(check, what):
    """Poll ``check()`` (a coroutine function) until it returns a truthy value."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def multiproc_env():
    """The environment the gateway runs in: no PROMETHEUS_MULTIPROC_DIR of the test run's."""
    return {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}


@pytest.fixture
async def two_workers(tmp_path, fake_upstream, multiproc_env):
    """``gatehouse run --workers 2`` on the fake upstream, as a subprocess; its stderr in
    ``tmp_path / "gateway.log"``."""
    fake_upstream.reply = REPLY
    fake_upstream.response_headers = dict(UPSTREAM_LIMITS)
    config = {
        "model_list": [fake_upstream.model_entry("gpt-4o", **PRICED),
                       {"model_name": "down", "params": {
                           "model": "openai/gpt-4o", "api_base": closed_base(),
                           "api_key": "sk-unused"}}],
        "guardrails": [GUARD],
        "litellm_settings": {"callbacks": ["prometheus"]},
        "general_settings": {"master_key": MASTER, "database_path": str(tmp_path / "g.db")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gatehouse.cli", "run", "--config", str(path), "--host",
            "127.0.0.1", "--port", str(port), "--workers", "2", stderr=stderr, env=multiproc_env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(
                base, connector=aiohttp.TCPConnector(force_close=True)) as session:
            answered: set[str] = set()

            async def ready():
                # Both workers, each known by its request-id prefix: a worker still starting
                # would leave every call to the other.
                assert proc.returncode is None, log.read_text()
                try:
                    async with session.get("/health/readiness") as resp:
                        if resp.status == 200:
                            answered.add(resp.headers["x-request-id"][:12])
                except aiohttp.ClientError:
                    pass
                return len(answered) == 2
            await wait_until(ready, "both workers answered")
            yield session
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


async def test_one_scrape_counts_every_workers_calls_exactly(two_workers):
    session = two_workers
    async with session.post("/key/generate", headers=ADMIN, json={
            "key_alias": "grafana-key", "max_budget": 5}) as resp:
        key = (await resp.json())["key"]
    headers = bearer(key)
    served_by = set()

    async def chat(model="gpt-4o", text="hello", **extra):
        async with session.post("/v1/chat/completions", headers=headers, json={
                "model": model, "messages": [{"role": "user", "content": text}],
                **extra}) as resp:
            # Each worker draws its own request-id prefix.
            served_by.add(resp.headers["x-request-id"][:12])
            return resp.status, await resp.read()

    # Each call on a connection of its own: the kernel spreads them over both workers.
    results = [await chat() for _ in range(6)]
    results += [await chat(stream=True, stream_options={"include_usage": True})
                for _ in range(2)]
    results += [await chat(text="something forbidden"), await chat(model="down")]
    assert [status for status, _ in results] == [200] * 8 + [400, 502]
    assert len(served_by) == 2, "both workers must have served calls"

    last = []

    async def scraped():
        async with session.get("/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        last[:] = [line for line in text.splitlines()
                   if line.startswith("litellm_proxy_total_requests_metric_total{")]
        counted = total(text, "litellm_proxy_total_requests_metric_total",
                        api_key_alias="grafana-key")
        return text if counted == 10 else None
    try:
        text = await wait_until(scraped, "every call counted")
    except AssertionError:
        # Which call went uncounted, for whoever reads a failed run.
        raise AssertionError(f"never every call counted; last scrape: {last}") from None

    mine = {"api_key_alias": "grafana-key"}
    requests = "litellm_proxy_total_requests_metric_total"
    assert total(text, requests, **mine, status_code="200", requested_model="gpt-4o") == 8
    assert total(text, requests, **mine, status_code="400") == 1
    assert total(text, requests, **mine, status_code="502", requested_model="down") == 1
    failed = "litellm_proxy_failed_requests_metric_total"
    assert total(text, failed, **mine) == 2
    assert total(text, failed, **mine, exception_status="502") == 1

    assert total(text, "litellm_input_tokens_metric_total", **mine) == 8 * PROMPT_TOKENS
    assert total(text, "litellm_output_tokens_metric_total", **mine) == 8 * COMPLETION_TOKENS
    assert total(text, "litellm_total_tokens_metric_total", **mine) == \
        8 * (PROMPT_TOKENS + COMPLETION_TOKENS)
    assert total(text, "litellm_spend_metric_total", **mine) == pytest.approx(8 * COST)

    assert total(text, "litellm_request_total_latency_metric_count", **mine) == 10
    assert total(text, "litellm_llm_api_latency_metric_count", **mine) == 8
    assert total(text, "litellm_overhead_latency_metric_count", **mine) == 8
    # The time before the upstream call is part of the overhead, for each call.
    assert total(text, "litellm_request_queue_time_seconds_count", **mine) == 8
    assert total(text, "litellm_request_queue_time_seconds_sum", **mine) <= \
        total(text, "litellm_overhead_latency_metric_sum", **mine)
    # Time to first token: streams only.
    assert total(text, "litellm_llm_api_time_to_first_token_metric_count", **mine) == 2

    deployment = {"api_key_alias": "grafana-key", "litellm_model_name": "openai/gpt-4o"}
    assert total(text, "litellm_deployment_total_requests_total", **deployment,
                 requested_model="gpt-4o") == 8
    assert total(text, "litellm_deployment_success_responses_total", **deployment) == 8
    assert total(text, "litellm_deployment_failure_responses_total", **deployment,
                 requested_model="down", exception_status="502") == 1
    # Every answer had the same completion tokens: per token is the upstream's time over them.
    per_token = "litellm_deployment_latency_per_output_token"
    assert total(text, f"{per_token}_count", **deployment) == 8
    assert total(text, f"{per_token}_sum", **deployment) == pytest.approx(
        total(text, "litellm_llm_api_latency_metric_sum", **mine) / COMPLETION_TOKENS)
    states = {s.labels["api_base"]: s.value for s in samples(text, "litellm_deployment_state")}
    assert sorted(states.values()) == [0, 1]

    limits = {"model_group": "gpt-4o", "api_key_alias": "grafana-key"}
    assert total(text, "litellm_remaining_requests_metric", **limits) == 99
    assert total(text, "litellm_remaining_tokens_metric", **limits) == 9000

    assert total(text, "litellm_api_key_max_budget_metric", **mine) == 5
    [remaining] = samples(text, "litellm_remaining_api_key_budget_metric", **mine)
    assert 5 - 8 * COST <= remaining.value <= 5

    guard = {"guardrail_name": "no-forbidden", "hook_type": "pre_call"}
    assert total(text, "litellm_guardrail_requests_total", **guard, status="success") == 9
    assert total(text, "litellm_guardrail_requests_total", **guard,
                 status="guardrail_intervened") == 1
    assert total(text, "litellm_guardrail_errors_total", **guard) == 0
    # Every run of the guardrail is timed, whatever its verdict.
    assert total(text, "litellm_guardrail_latency_seconds_count", **guard) == 10


async def test_metrics_is_public_unless_the_config_asks_for_a_key(start):
    client = await start({"litellm_settings": {"callbacks": ["prometheus"]}})
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain")

    guarded = await start({"litellm_settings": {
        "callbacks": ["prometheus"], "require_auth_for_metrics_endpoint": True}})
    assert (await guarded.get("/metrics")).status == 401
    assert (await guarded.get("/metrics", headers=ADMIN)).status == 200


async def test_no_metrics_route_without_the_callback(start):
    assert (await (await start()).get("/metrics", headers=ADMIN)).status == 404


async def test_a_scrape_times_the_database_and_redis(start, redis_url, redis_namespace):
    client = await start({"litellm_settings": {"callbacks": ["prometheus"]},
                          "general_settings": {"redis_url": redis_url,
                                               "redis_namespace": redis_namespace}})
    text = await (await client.get("/metrics")).text()
    assert total(text, "litellm_redis_latency_count") == 1
    assert total(text, "litellm_postgres_latency_count") == 1
    assert total(text, "litellm_redis_fails_total") == 0


async def test_end_users_are_labelled_only_when_asked(start, send_chat):
    async def end_users(settings):
        client = await start({"litellm_settings": {"callbacks": ["prometheus"], **settings}})
        assert (await send_chat(client, "hi", headers=ADMIN, user="alice")).status == 200
        await client.app[GATEWAY].call_log.drain()
        text = await (await client.get("/metrics")).text()
        return {s.labels["end_user"] for s in samples(
            text, "litellm_proxy_total_requests_metric_total")}

    assert await end_users({}) == {""}
    assert await end_users({"enable_end_user_cost_tracking_prometheus_only": True}) == {"alice"}


async def test_budget_left_after_a_call_counts_that_call_for_key_team_and_user(start, send_chat, fake_upstream):
    # A panel of budget left must drop with the call just made, as the key's spend does.
    fake_upstream.reply = REPLY
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "litellm_settings": {"callbacks": ["prometheus"]}})
    team = await admin_post(client, "/team/new", {"team_alias": "growth", "max_budget": 2})
    await admin_post(client, "/user/new", {"user_id": "ada", "max_budget": 3})
    key = await admin_post(client, "/key/generate", {
        "key_alias": "panel", "max_budget": 1, "team_id": team["team_id"], "user_id": "ada"})
    assert (await send_chat(client, "hi", headers=bearer(key["key"]))).status == 200
    await settle(client)
    spent = (await admin_get(client, "/key/info", key=key["key"]))["info"]["spend"]
    assert spent == pytest.approx(COST)
    text = await (await client.get("/metrics")).text()
    [left] = samples(text, "litellm_remaining_api_key_budget_metric", api_key_alias="panel")
    assert left.value == pytest.approx(1 - spent)
    [left] = samples(text, "litellm_remaining_team_budget_metric", team_alias="growth")
    assert left.value == pytest.approx(2 - spent)
    [left] = samples(text, "litellm_remaining_user_budget_metric", user="ada")
    assert left.value == pytest.approx(3 - spent)
    assert total(text, "litellm_user_max_budget_metric", user="ada") == 3


def epoch(iso):
    return datetime.fromisoformat(iso).timestamp()


async def test_hours_until_the_key_and_team_budgets_reset(start, send_chat, fake_upstream):
    client = await start({"model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
                          "litellm_settings": {"callbacks": ["prometheus"]}})
    team = await admin_post(client, "/team/new", {"team_alias": "weekly", "max_budget": 2,
                                                  "budget_duration": "7d"})
    key = await admin_post(client, "/key/generate", {
        "key_alias": "daily", "max_budget": 1, "budget_duration": "1d",
        "team_id": team["team_id"]})
    # A key with no budget period has no reset to count down to.
    plain = await admin_post(client, "/key/generate", {"key_alias": "plain", "max_budget": 1})
    before = time.time()
    for made in (key, plain):
        assert (await send_chat(client, "hi", headers=bearer(made["key"]))).status == 200
    await settle(client)
    text = await (await client.get("/metrics")).text()
    after = time.time()
    key_reset = epoch((await admin_get(client, "/key/info", key=key["key"]))["info"][
        "budget_reset_at"])
    team_reset = epoch((await admin_get(client, "/team/info", team_id=team["team_id"]))[
        "team_info"]["budget_reset_at"])
    [hours] = samples(text, "litellm_api_key_budget_remaining_hours_metric")
    assert hours.labels["api_key_alias"] == "daily"
    assert (key_reset - after) / 3600 <= hours.value <= (key_reset - before) / 3600
    [hours] = samples(text, "litellm_team_budget_remaining_hours_metric")
    assert hours.labels == {"team_id": team["team_id"], "team_alias": "weekly"}
    assert (team_reset - after) / 3600 <= hours.value <= (team_reset - before) / 3600


@pytest.fixture
async def backup(aiohttp_server):
    """A second upstream, serving the ``backup`` model."""
    second = FakeUpstream()
    second.url = str((await aiohttp_server(second.app)).make_url("/v1"))
    second.reply = REPLY
    return second


async def test_fallbacks_are_counted_by_the_deployment_that_failed(start, send_chat,
                                                                   fake_upstream, backup):
    fake_upstream.fail(500)
    client = await start({
        "model_list": [fake_upstream.model_entry("primary"), backup.model_entry("backup"),
                       {"model_name": "also-down", "params": {
                           "model": "openai/gpt-4o", "api_base": closed_base(),
                           "api_key": "sk-unused"}}],
        "router_settings": {"fallbacks": [{"primary": ["also-down", "backup"]}]},
        "litellm_settings": {"callbacks": ["prometheus"]}})
    key = await admin_post(client, "/key/generate", {"key_alias": "falls"})
    headers = bearer(key["key"])
    calls = [await send_chat(client, "hi", headers=headers, model="primary")
             for _ in range(2)]
    calls.append(await send_chat(client, "hi", headers=headers, model="primary", stream=True))
    assert [(c.status, c.headers["x-litellm-model-group"]) for c in calls] == \
        [(200, "backup")] * 3
    # Every fallback fails: the client gets the first model's error.
    backup.fail(429)
    assert (await send_chat(client, "hi", headers=headers, model="primary")).status == 500
    # No fallback configured for the model: nothing to count.
    assert (await send_chat(client, "hi", headers=headers, model="also-down")).status == 502
    await settle(client)
    text = await (await client.get("/metrics")).text()

    primary = client.app[GATEWAY].router.routes.groups["primary"][0]
    failed = {"requested_model": "primary", "model_id": primary.id,
              "litellm_model_name": "openai/primary", "api_base": fake_upstream.url,
              "api_key_alias": "falls", "exception_status": "500",
              "exception_class": "server_error"}
    assert total(text, "litellm_deployment_successful_fallbacks_total", **failed,
                 fallback_model="backup") == 3
    assert total(text, "litellm_deployment_failed_fallbacks_total", **failed,
                 fallback_model="also-down") == 4
    assert total(text, "litellm_deployment_failed_fallbacks_total", **failed,
                 fallback_model="backup") == 1
    assert total(text, "litellm_deployment_successful_fallbacks_total") == 3
    assert total(text, "litellm_deployment_failed_fallbacks_total") == 5
    # The deployment that failed first shows as failing, though its calls were answered.
    assert total(text, "litellm_deployment_failure_responses_total", **failed) == 4
    assert total(text, "litellm_deployment_state", model_id=primary.id) == 1


@pytest.fixture
def given_dir(tmp_path, multiproc_env):
    """An operator's PROMETHEUS_MULTIPROC_DIR holding a previous run's (here: corrupt) file."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"left over from the last run")
    multiproc_env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


async def test_the_operators_multiproc_dir_is_emptied_at_start(given_dir, two_workers):
    async with two_workers.get("/metrics") as resp:
        assert resp.status == 200
        # Multiprocess values exist once written: the scrape's own database probe is (and
        # any readiness probe the start-up wait made, in either worker).
        assert total(await resp.text(), "litellm_postgres_latency_count") >= 1
    assert not (given_dir / "counter_99999.db").exists()


async def test_a_gateway_without_keys_counts_every_call_and_guardrail_step(
        gateway, fake_upstream, send_chat):
    """No master key: nothing is billed or logged, so only the metrics want each call."""
    fake_upstream.reply = REPLY
    both_ways = {**GUARD, "params": {**GUARD["params"], "mode": ["pre_call", "post_call"]}}
    client = await gateway({
        "model_list": [fake_upstream.model_entry("gpt-4o", **PRICED),
                       {"model_name": "down", "params": {
                           "model": "openai/gpt-4o", "api_base": closed_base(),
                           "api_key": "sk-unused"}}],
        "guardrails": [both_ways], "litellm_settings": {"callbacks": ["prometheus"]}},
        load=["banned_keywords"])
    statuses = [(await send_chat(client, "hello")).status for _ in range(3)]
    statuses.append((await send_chat(client, "something forbidden")).status)
    statuses.append((await client.post("/v1/chat/completions", json={
        "model": "down", "messages": [{"role": "user", "content": "hi"}]})).status)
    assert statuses == [200, 200, 200, 400, 502]
    await client.app[GATEWAY].call_log.drain()
    text = await (await client.get("/metrics")).text()

    requests = "litellm_proxy_total_requests_metric_total"
    assert total(text, requests, status_code="200", requested_model="gpt-4o") == 3
    assert total(text, requests, status_code="400") == 1
    assert total(text, requests, status_code="502", requested_model="down") == 1
    assert total(text, "litellm_proxy_failed_requests_metric_total") == 2
    assert total(text, "litellm_input_tokens_metric_total") == 3 * PROMPT_TOKENS
    assert total(text, "litellm_spend_metric_total") == pytest.approx(3 * COST)
    # Every observation lands in exactly one bucket: the +Inf bucket is the count.
    for histogram in ("litellm_request_total_latency_metric", "litellm_overhead_latency_metric",
                      "litellm_guardrail_latency_seconds"):
        assert total(text, f"{histogram}_bucket", le="+Inf") == total(text, f"{histogram}_count")
    assert total(text, "litellm_request_total_latency_metric_count") == 5
    assert total(text, "litellm_overhead_latency_metric_count") == 3
    assert total(text, "litellm_deployment_success_responses_total") == 3
    assert total(text, "litellm_deployment_failure_responses_total", requested_model="down",
                 exception_status="502") == 1

    runs = "litellm_guardrail_requests_total"
    name = {"guardrail_name": "no-forbidden"}
    # The down model's call passed pre_call and never reached post_call; nor did the refused
    # one.
    assert total(text, runs, **name, hook_type="pre_call", status="success") == 4
    assert total(text, runs, **name, hook_type="pre_call", status="guardrail_intervened") == 1
    assert total(text, runs, **name, hook_type="post_call", status="success") == 3
    assert total(text, runs, **name, hook_type="post_call", status="not_run") == 2
    # A run that never happened is not timed.
    assert total(text, "litellm_guardrail_latency_seconds_count", **name,
                 hook_type="post_call") == 3


@pytest.mark.parametrize("amounts", [
    # On each bound, just past it, zero, past the last finite bound, negative.
    [0.0005, 0.00050001, 0.0, 5.0, 10.0, 11.0, 1e9, -1.0],
    [0.005, 0.01, 0.025, 120.0, 300.0, 300.5, 1e-9],
])
def test_counting_cells_show_what_the_librarys_own_calls_show(amounts):
    """The cells metrics count through add to prometheus-client's own values: a scrape shows
    exactly what the library's ``observe`` and ``inc`` would have."""
    import prometheus_client as prom

    from gatehouse.ops.metric_cells import Timing, counting
    from gatehouse.ops.metrics import LATENCY_BUCKETS, SHORT_BUCKETS

    def scraped(through_cells):
        registry = prom.CollectorRegistry()
        counter = prom.Counter("calls", "", ["key"], registry=registry)
        histograms = [prom.Histogram(f"h{i}", "", ["key"], buckets=buckets, registry=registry)
                      for i, buckets in enumerate((LATENCY_BUCKETS, SHORT_BUCKETS))]
        for amount in amounts:
            for histogram in histograms:
                child = histogram.labels("k")
                if through_cells:
                    Timing(child).observe(amount)
                else:
                    child.observe(amount)
            if amount >= 0:
                (counting(counter.labels("k")) if through_cells
                 else counter.labels("k").inc)(amount)
        # All but the time each series was made.
        return [line for line in prom.generate_latest(registry).decode().splitlines()
                if "_created" not in line]

    assert scraped(through_cells=True) == scraped(through_cells=False)
