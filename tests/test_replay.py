"""Replay: with ``store_prompts_in_spend_logs`` a call's request and reply are kept in its spend
row (masked by the logging_only guardrails first), the spend-log routes return them, and
``gatehouse replay`` runs a candidate config's guardrails over them, as a user runs it."""

import asyncio
import re
import sys

import orjson
import yaml

from admin_kit import ADMIN, MASTER, bearer, both_databases
from gatehouse.app import GATEWAY

SECRET = "AKIAIOSFODNN7EXAMPLE"
LOADED = ["banned_keywords", "secrets"]


def gateway_config(store_prompts=True):
    return {
        "general_settings": {"store_prompts_in_spend_logs": store_prompts},
        "guardrails": [
            {"guardrail_name": "codewords",
             "litellm_params": {"guardrail": "banned_keywords", "mode": ["pre_call", "post_call"],
                                "default_on": True, "banned_keywords_list": ["falcon"]}},
            {"guardrail_name": "log-secrets",
             "litellm_params": {"guardrail": "hide-secrets", "mode": "logging_only",
                                "default_on": True}},
        ],
    }


async def make_calls(client, fake_upstream, send_chat):
    """Four calls: one passed, one blocked, one with a secret the log masks, one whose reply
    holds a word only the candidate bans. Returns their request ids in order."""
    resp = await client.post("/key/generate", json={}, headers=ADMIN)
    key = (await resp.json())["key"]
    ids = []
    for text, reply, status in (("hello there", None, 200),
                                ("tell me about project falcon", None, 400),
                                (f"my access key id is {SECRET} ok", None, 200),
                                ("any news?", "The eagle has landed.", 200)):
        fake_upstream.reply = reply or "Hello from the fake upstream."
        resp = await send_chat(client, text, headers=bearer(key))
        assert resp.status == status, await resp.text()
        ids.append(resp.headers["x-litellm-call-id"])
    gateway = client.app[GATEWAY]
    await gateway.call_log.drain()
    assert await gateway.accounting.flush()
    return key, ids


def database_url(database, tmp_path):
    return database.get("database_url") or f"sqlite:///{tmp_path / 'gatehouse.db'}"


def write_candidate(tmp_path, url, vendor_url):
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump({
        "general_settings": {"database_url": url},
        "guardrails": [
            # The same name with another list: bans a word of a request and of a reply.
            {"guardrail_name": "codewords",
             "litellm_params": {"guardrail": "banned_keywords", "mode": ["pre_call", "post_call"],
                                "banned_keywords_list": ["there", "eagle"]}},
            # A vendor that answers every check with an error.
            {"guardrail_name": "injection",
             "litellm_params": {"guardrail": "lakera", "mode": "pre_call",
                                "api_key": "lakera-test-key", "api_base": vendor_url}},
        ],
    }))
    return path


async def gatehouse(*args):
    """``gatehouse ...`` in a process of its own, while this loop keeps serving the fakes."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatehouse.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


@both_databases
async def test_replay_reports_what_a_candidate_config_would_have_done(
        start, database, tmp_path, fake_upstream, fake_vendor, send_chat):
    client = await start(gateway_config(), load=LOADED)
    key, (passed, blocked, masked, eagle) = await make_calls(client, fake_upstream, send_chat)

    vendor = await fake_vendor()
    candidate = write_candidate(tmp_path, database_url(database, tmp_path),
                                vendor.break_as("http_500"))
    code, out, err = await gatehouse("replay", "--config", str(candidate), "--since", "1h",
                                     "--rate", "100")
    assert code == 0, err
    assert "Replayed 4 stored calls" in out
    # guardrail, type, checked, would block, would rewrite, errors, calls that differ
    assert re.search(r"^codewords\s+banned_keywords\s+4\s+2\s+0\s+0\s+3$", out, re.M), out
    assert re.search(r"^injection\s+lakera\s+4\s+0\s+0\s+4\s+4$", out, re.M), out
    assert f"{passed}  pre_call: then passed, now blocked" in out
    assert f"{blocked}  pre_call: then blocked, now passed" in out
    assert f"{eagle}  post_call: then passed, now blocked" in out
    # The vendor was asked once per call, and saw the secret masked as the row keeps it.
    assert len(vendor.received) == 4
    assert SECRET not in orjson.dumps(vendor.received).decode()
    assert "[REDACTED]" in orjson.dumps(vendor.received).decode()

    code, out, err = await gatehouse("replay", "--config", str(candidate), "--since", "1h",
                                     "--rate", "100", "--json")
    assert code == 0, err
    report = orjson.loads(out)
    assert report["calls_replayed"] == 4 and report["calls_without_text"] == 0
    codewords, injection = report["guardrails"]
    assert (codewords["guardrail_name"], codewords["checked"], codewords["would_block"],
            codewords["would_rewrite"], codewords["errors"]) == ("codewords", 4, 2, 0, 0)
    assert sorted((d["request_id"], d["mode"], d["then"], d["now"])
                  for d in codewords["differences"]) == sorted([
        (passed, "pre_call", "passed", "blocked"), (blocked, "pre_call", "blocked", "passed"),
        (eagle, "post_call", "passed", "blocked")])
    assert (injection["checked"], injection["would_block"], injection["errors"]) == (4, 0, 4)
    assert {(d["then"], d["now"]) for d in injection["differences"]} == {("not_run", "failed")}
    assert all("HTTP 500" in d["reason"] for d in injection["differences"])
    assert masked not in {d["request_id"] for d in codewords["differences"]}

    code, out, err = await gatehouse("replay", "--config", str(candidate), "--since", "1h",
                                     "--rate", "100", "--json", "--limit", "1", "--key", key)
    assert code == 0, err
    report = orjson.loads(out)
    [codewords, _] = report["guardrails"]
    # The newest call alone: the reply with the word the candidate bans. The calls past the
    # limit kept their text: none is reported as a call without it.
    assert (codewords["checked"], codewords["would_block"]) == (1, 1)
    assert (report["calls_replayed"], report["calls_without_text"]) == (1, 0)
    code, out, err = await gatehouse("replay", "--config", str(candidate), "--since", "1h",
                                     "--rate", "100", "--limit", "1")
    assert code == 0 and "Replayed 1 stored call " in out and "no text stored" not in out, out

    code, _, err = await gatehouse("replay", "--config", str(candidate), "--team", "nobody")
    assert code == 2 and "no calls stored since" in err


@both_databases
async def test_spend_logs_return_the_stored_text_masked_by_logging_only_guardrails(
        start, fake_upstream, send_chat):
    client = await start(gateway_config(), load=LOADED)
    _, (passed, blocked, masked, _) = await make_calls(client, fake_upstream, send_chat)

    async def log_of(request_id):
        resp = await client.get("/spend/logs", params={"request_id": request_id},
                                headers=ADMIN)
        [row] = await resp.json()
        return row

    row = await log_of(passed)
    assert row["messages"] == [{"role": "user", "content": "hello there"}]
    assert row["proxy_server_request"]["messages"] == row["messages"]
    assert row["proxy_server_request"]["model"] == "gpt-4o"
    assert row["response"]["choices"][0]["message"]["content"] == \
        "Hello from the fake upstream."
    row = await log_of(masked)
    assert SECRET not in orjson.dumps(row).decode()
    assert row["messages"][0]["content"] == "my access key id is [REDACTED] ok"
    # A refused call keeps its request; it has no reply.
    row = await log_of(blocked)
    assert row["messages"][0]["content"] == "tell me about project falcon"
    assert row["response"] == {}


async def test_a_call_that_switched_its_log_masking_off_keeps_no_text(
        start, fake_upstream, send_chat):
    client = await start(gateway_config(), load=LOADED)
    # A proxy admin may exempt a key from hide-secrets; its calls' text is then never stored.
    exempt = await client.post("/key/generate", json={"permissions": {"hide_secrets": False}},
                               headers=ADMIN)
    assert exempt.status == 200
    resp = await send_chat(client, f"my access key id is {SECRET} ok",
                           headers=bearer((await exempt.json())["key"]))
    assert resp.status == 200
    gateway = client.app[GATEWAY]
    await gateway.call_log.drain()
    assert await gateway.accounting.flush()
    request_id = resp.headers["x-litellm-call-id"]
    resp = await client.get("/spend/logs", params={"request_id": request_id}, headers=ADMIN)
    [row] = await resp.json()
    assert SECRET not in orjson.dumps(row).decode()
    assert (row["messages"], row["response"], row["proxy_server_request"]) == ({}, {}, {})


async def test_without_store_prompts_nothing_is_kept_and_replay_says_how_to_turn_it_on(
        start, database, tmp_path, fake_upstream, send_chat):
    client = await start(gateway_config(store_prompts=False), load=LOADED)
    _, (passed, *_) = await make_calls(client, fake_upstream, send_chat)
    resp = await client.get("/spend/logs", params={"request_id": passed}, headers=ADMIN)
    [row] = await resp.json()
    assert (row["messages"], row["response"], row["proxy_server_request"]) == ({}, {}, {})

    candidate = write_candidate(tmp_path, database_url(database, tmp_path), "http://127.0.0.1:9")
    code, out, err = await gatehouse("replay", "--config", str(candidate))
    assert code == 2
    assert "none of the 4 calls stored since" in err
    assert "enable store_prompts_in_spend_logs" in err
    assert "Traceback" not in err and MASTER not in err


async def test_replay_refuses_a_missing_database_and_a_bad_config(tmp_path):
    candidate = write_candidate(tmp_path, f"sqlite:///{tmp_path / 'nothing.db'}",
                                "http://127.0.0.1:9")
    code, _, err = await gatehouse("replay", "--config", str(candidate), "--since", "24h")
    assert code == 2
    assert f"no database at {tmp_path / 'nothing.db'}" in err
    assert not (tmp_path / "nothing.db").exists()

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"guardrails": [
        {"guardrail_name": "x", "litellm_params": {"guardrail": "no-such-type"}}]}))
    code, _, err = await gatehouse("replay", "--config", str(bad))
    assert code == 2 and "no-such-type" in err and "Traceback" not in err

    code, _, err = await gatehouse("replay", "--config", str(candidate), "--since", "soon")
    assert code == 2 and "'soon'" in err and "Traceback" not in err


async def test_replay_says_when_postgres_cannot_be_reached(tmp_path):
    candidate = write_candidate(tmp_path, "postgresql://nobody@127.0.0.1:9/none",
                                "http://127.0.0.1:9")
    code, _, err = await gatehouse("replay", "--config", str(candidate))
    assert code == 2 and "cannot open the database" in err and "Traceback" not in err


async def test_a_logging_only_guardrail_that_does_not_enforce_keeps_the_text_out(
        start, fake_upstream, send_chat):
    # Monitor mode leaves the record unmasked: the row then keeps no text rather than the
    # secret the guardrail would have masked.
    config = gateway_config()
    config["guardrails"][1]["litellm_params"]["enforce"] = False
    client = await start(config, load=LOADED)
    _, (passed, _, masked, _) = await make_calls(client, fake_upstream, send_chat)
    rows = {}
    for request_id in (passed, masked):
        resp = await client.get("/spend/logs", params={"request_id": request_id},
                                headers=ADMIN)
        [rows[request_id]] = await resp.json()
    assert rows[passed]["messages"] == [{"role": "user", "content": "hello there"}]
    assert SECRET not in orjson.dumps(rows[masked]).decode()
    assert rows[masked]["proxy_server_request"] == {}
