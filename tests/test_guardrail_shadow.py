"""Monitor and shadow modes: ``enforce: false`` runs a guardrail and records the verdict it
would have given without ever blocking or rewriting; ``shadow_of`` runs a candidate beside an
enforcing guardrail, off the request path, and records where the two disagree. Both work for
any guardrail type without its help."""

import logging

import pytest

from admin_kit import ADMIN, admin_get, admin_post, both_backends, settle
from test_guardrail_monitoring import by_name as entries, record_of
from test_guardrail_monitoring import start as with_guardrails

from doubles import EVENTS, PLUGINS, RECORDS, guardrail
from gatehouse.app import GATEWAY, create_app
from gatehouse.config import ConfigError, config_from_dict


async def scrape(client):
    return await (await client.get("/metrics")).text()


async def test_a_monitored_guardrail_records_a_block_and_the_call_goes_on(gateway, chat,
                                                                         fake_upstream):
    client = await with_guardrails(gateway, guardrail("watcher", block_word="plan", default_on=True,
                                            enforce=False), callbacks=["prometheus"])
    resp = await client.post("/v1/chat/completions", json=chat("a secret plan"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "a secret plan"
    entry = entries(await record_of(client))["watcher", "pre_call"]
    assert entry["guardrail_status"] == "would_have_intervened"
    assert entry["status_reason"] == "Probe watcher saw plan"
    assert entry["enforced"] is False
    assert ('litellm_guardrail_requests_total{error_type="",guardrail_name="watcher",'
            'hook_type="pre_call",status="would_have_intervened"} 1.0') in await scrape(client)


async def test_a_monitored_rewrite_reaches_neither_upstream_nor_client(gateway, chat,
                                                                      fake_upstream):
    client = await with_guardrails(
        gateway, guardrail("pre", append=" [checked]", default_on=True, enforce=False),
        guardrail("post", mode="post_call", append=" [checked]", default_on=True,
                  enforce=False))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    assert fake_upstream.last["messages"][0]["content"] == "hello"
    assert (await resp.json())["choices"][0]["message"]["content"] == fake_upstream.reply
    found = entries(await record_of(client))
    for key in (("pre", "pre_call"), ("post", "post_call")):
        assert found[key]["guardrail_status"] == "would_have_intervened"
        assert found[key]["status_reason"] == "would have rewritten the call"


async def test_a_monitored_guardrail_that_crashes_never_fails_the_call(gateway, chat):
    client = await with_guardrails(gateway, guardrail("flaky", fail="crash", default_on=True,
                                            enforce=False))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    entry = entries(await record_of(client))["flaky", "pre_call"]
    assert entry["guardrail_status"] == "guardrail_failed_to_respond"


async def test_a_monitored_stream_check_never_cuts_the_stream(gateway, chat, fake_upstream):
    fake_upstream.reply = "the secret plan is here"
    client = await with_guardrails(gateway, guardrail("watcher", mode="post_call", type_="stream_probe",
                                            block_word="plan", default_on=True, enforce=False))
    resp = await client.post("/v1/chat/completions", json=chat("hi", stream=True))
    text = await resp.text()
    assert "error" not in text and "plan" in text and "[DONE]" in text
    entry = entries(await record_of(client))["watcher", "post_call"]
    assert entry["guardrail_status"] == "would_have_intervened"


async def test_a_shadow_runs_beside_its_target_and_its_disagreement_is_recorded(
        gateway, chat, fake_upstream, caplog):
    client = await with_guardrails(
        gateway, guardrail("current", block_word="bomb", default_on=True),
        guardrail("candidate", block_word="plan", shadow_of="current"),
        callbacks=["prometheus"])
    with caplog.at_level(logging.WARNING, "gatehouse.guardrails"):
        resp = await client.post("/v1/chat/completions", json=chat("a secret plan"))
        assert resp.status == 200
        found = entries(await record_of(client))
    assert fake_upstream.last["messages"][0]["content"] == "a secret plan"
    shadow = found["candidate", "pre_call"]
    assert shadow["guardrail_status"] == "would_have_intervened"
    assert (shadow["shadow_of"], shadow["verdict"], shadow["target_verdict"],
            shadow["verdicts_differ"]) == ("current", "blocked", "passed", True)
    assert found["current", "pre_call"]["guardrail_status"] == "success"
    assert any("'candidate' disagrees with 'current'" in r.getMessage()
               for r in caplog.records)
    assert ('gatehouse_guardrail_shadow_disagreements_total{guardrail_name="candidate",'
            'hook_type="pre_call",shadow_of="current"} 1.0') in await scrape(client)


async def test_a_shadow_that_agrees_and_one_that_would_rewrite(gateway, chat, fake_upstream):
    client = await with_guardrails(
        gateway, guardrail("current", block_word="bomb", default_on=True),
        guardrail("same", block_word="bomb", shadow_of="current"),
        guardrail("masker", append="!", shadow_of="current"))
    blocked = await client.post("/v1/chat/completions", json=chat("a bomb"))
    assert blocked.status == 400
    found = entries(await record_of(client))
    assert (found["same", "pre_call"]["verdict"], found["same", "pre_call"]["target_verdict"],
            found["same", "pre_call"]["verdicts_differ"]) == ("blocked", "blocked", False)
    assert found["masker", "pre_call"]["verdict"] == "rewrote"
    assert found["masker", "pre_call"]["verdicts_differ"] is True


async def test_a_shadow_sees_what_its_target_saw_not_what_it_made_of_it(gateway, chat):
    # The target rewrites; the shadow still judges the text as the target was handed it.
    client = await with_guardrails(
        gateway, guardrail("current", append=" plan", default_on=True),
        guardrail("candidate", block_word="plan", shadow_of="current"))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    shadow = entries(await record_of(client))["candidate", "pre_call"]
    assert (shadow["verdict"], shadow["target_verdict"]) == ("passed", "rewrote")


async def test_a_shadow_is_never_selected_on_its_own(gateway, chat):
    client = await with_guardrails(gateway, guardrail("current"),
                         guardrail("candidate", block_word="hello", shadow_of="current",
                                   default_on=True))
    resp = await client.post("/v1/chat/completions", json=chat("hello"))
    assert resp.status == 200
    assert ("candidate", "pre_call") not in EVENTS


@pytest.mark.parametrize("params, problem", [
    ({"shadow_of": "nobody"}, "shadow_of: 'candidate' shadows an unknown guardrail 'nobody'"),
    ({"shadow_of": "candidate"}, "'candidate' cannot shadow itself"),
    ({"shadow_of": "current", "enforce": True}, "a guardrail with shadow_of never enforces"),
    ({"cache_ttl": 60}, "does not declare that its verdict depends only on its input"),
    ({"cache_ttl": -1}, "cache_ttl"),
    ({"latency_budget_ms": 0}, "latency_budget_ms"),
    ({"shadow_concurrency": 0}, "shadow_concurrency"),
    ({"on_budget_exceeded": "demote"}, "on_budget_exceeded needs latency_budget_ms"),
])
def test_config_mistakes_stop_the_start(params, problem):
    config = config_from_dict({"model_list": [], "guardrails": [
        guardrail("current"), guardrail("candidate", **params)]})
    with pytest.raises(ConfigError) as raised:
        create_app(config, extra_plugins=PLUGINS, load=())
    assert problem in str(raised.value)
    assert "guardrails[1].params" in str(raised.value)


def test_a_shadow_of_a_shadow_stops_the_start():
    config = config_from_dict({"model_list": [], "guardrails": [
        guardrail("current"), guardrail("one", shadow_of="current"),
        guardrail("two", shadow_of="one")]})
    with pytest.raises(ConfigError, match="'two' shadows 'one', itself a shadow"):
        create_app(config, extra_plugins=PLUGINS, load=())


async def test_shadow_runs_past_the_concurrency_limit_are_skipped_and_say_so(gateway, chat):
    client = await with_guardrails(
        gateway, guardrail("current", default_on=True),
        guardrail("slow", fail="stall", timeout=1, shadow_of="current", shadow_concurrency=1))
    first = await client.post("/v1/chat/completions", json=chat("one"))
    second = await client.post("/v1/chat/completions", json=chat("two"))
    assert (first.status, second.status) == (200, 200)
    await client.app[GATEWAY].call_log.drain()
    shadows = sorted((r["guardrail_information"][-1]["guardrail_status"],
                      r["guardrail_information"][-1]["status_reason"]) for r in RECORDS)
    assert shadows == [
        ("guardrail_failed_to_respond", "no verdict within 1s"),
        ("not_run", "skipped: 1 shadow runs already in flight")]


async def test_a_stored_guardrail_may_shadow_a_configured_one_but_not_an_unknown_one(
        start, chat):
    client = await start({"guardrails": [guardrail("current", default_on=True)]},
                         plugins=PLUGINS)
    unknown = await client.post("/guardrails", headers=ADMIN, json={"guardrail": {
        "guardrail_name": "candidate", "litellm_params": {
            "guardrail": "probe", "shadow_of": "nobody"}}})
    assert unknown.status == 400
    assert "'candidate' shadows an unknown guardrail 'nobody'" in \
        (await unknown.json())["error"]["message"]
    await admin_post(client, "/guardrails", {"guardrail": {
        "guardrail_name": "candidate", "litellm_params": {
            "guardrail": "probe", "block_word": "plan", "shadow_of": "current"}}})
    resp = await client.post("/v1/chat/completions", json=chat("a plan"), headers=ADMIN)
    assert resp.status == 200
    await client.app[GATEWAY].call_log.drain()
    shadow = entries(RECORDS[-1])["candidate", "pre_call"]
    assert (shadow["verdict"], shadow["target_verdict"]) == ("blocked", "passed")


@both_backends
async def test_a_shadows_disagreement_is_kept_in_the_calls_spend_row(start, chat):
    client = await start({"guardrails": [
        guardrail("current", block_word="bomb", default_on=True),
        guardrail("candidate", block_word="plan", shadow_of="current")]}, plugins=PLUGINS)
    resp = await client.post("/v1/chat/completions", json=chat("a secret plan"), headers=ADMIN)
    assert resp.status == 200
    await settle(client)
    shown = await admin_get(client, f"/spend/logs/ui/{resp.headers['x-request-id']}")
    runs = {run["guardrail_name"]: run for run in shown["metadata"]["guardrail_information"]}
    assert runs["current"]["guardrail_status"] == "success"
    shadow = runs["candidate"]
    assert (shadow["guardrail_status"], shadow["shadow_of"], shadow["verdict"],
            shadow["target_verdict"], shadow["verdicts_differ"]) == (
        "would_have_intervened", "current", "blocked", "passed", True)
