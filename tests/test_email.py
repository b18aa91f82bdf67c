"""Email notifications: invitations, new and rotated keys, budget alerts, sent to a real SMTP
server the test starts, with the operator's branding; the key only where allowed; a mail that
cannot be sent fails nothing."""

import asyncio
import logging
import socket
import sys
from datetime import datetime
from email import message_from_bytes, policy

import pytest
from admin_kit import ADMIN, MASTER, PRICED, admin_post, bearer
from aiosmtpd.smtp import SMTP
from gatehouse.app import GATEWAY, create_app
from gatehouse.config import ConfigError, config_from_dict

EMAIL = {"general_settings": {"alerting": ["email"]}}
HIDDEN = "[Key hidden for security - retrieve from dashboard]"


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append(mail)
        return "250 OK"

    def parts(self, mail):
        return (mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content())


@pytest.fixture
async def inbox(monkeypatch):
    box = Inbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(box, hostname="smtp.test"), "127.0.0.1", 0)
    for name, value in {"SMTP_HOST": "127.0.0.1",
                        "SMTP_PORT": str(server.sockets[0].getsockname()[1]),
                        "SMTP_TLS": "False", "SMTP_SENDER_EMAIL": "llm@acme.test"}.items():
        monkeypatch.setenv(name, value)
    yield box
    server.close()
    await server.wait_closed()


async def settled(*clients):
    for client in clients:
        gw = client.app[GATEWAY]
        await gw.call_log.drain()
        await gw.notices.drain()


async def test_an_invited_user_gets_a_branded_mail_with_their_key(start, inbox, monkeypatch):
    for name, value in {"EMAIL_LOGO_URL": "https://acme.test/logo.png",
                        "EMAIL_SUPPORT_CONTACT": "help@acme.test",
                        "EMAIL_SIGNATURE": "<p>The <b>Platform</b> team</p>",
                        "EMAIL_SUBJECT_INVITATION": "Acme: your LLM access",
                        "PROXY_BASE_URL": "https://llm.acme.test/"}.items():
        monkeypatch.setenv(name, value)
    client = await start(EMAIL)
    made = await admin_post(client, "/user/new", {
        "user_email": "ada@acme.test", "user_alias": "<Ada & co>", "send_invite_email": True})
    await settled(client)

    [mail] = inbox.mails
    assert (mail["To"], mail["From"], mail["Subject"]) == (
        "ada@acme.test", "llm@acme.test", "Acme: your LLM access")
    plain, html = inbox.parts(mail)
    for part in (plain, html):
        assert made["key"] in part
        assert "https://llm.acme.test/ui" in part
        assert "help@acme.test" in part
    assert '<img src="https://acme.test/logo.png"' in html
    assert "<p>The <b>Platform</b> team</p>" in html
    assert "The Platform team" in plain
    # What users wrote is escaped in the HTML, and left as written in the text.
    assert "&lt;Ada &amp; co&gt;" in html and "<Ada" not in html
    assert "<Ada & co>" in plain


async def test_a_new_key_is_mailed_to_its_user_only_when_asked_and_hidden_if_so_set(
        start, inbox, monkeypatch):
    monkeypatch.setenv("EMAIL_INCLUDE_API_KEY", "False")
    client = await start(EMAIL)
    await admin_post(client, "/user/new", {"user_id": "bob", "user_email": "bob@acme.test",
                                           "auto_create_key": False})
    quiet = await admin_post(client, "/key/generate", {"user_id": "bob"})
    made = await admin_post(client, "/key/generate", {
        "user_id": "bob", "key_alias": "bob-ci", "send_invite_email": True})
    await settled(client)

    [mail] = inbox.mails
    assert (mail["To"], mail["Subject"]) == ("bob@acme.test", "Gatehouse: API Key Created")
    for part in inbox.parts(mail):
        assert HIDDEN in part and "bob-ci" in part
        assert made["key"] not in part and quiet["key"] not in part
        assert made["key"][-8:] not in part


async def test_regenerated_and_rotated_keys_mail_their_user_the_new_secret(
        start, inbox, fake_upstream, chat):
    client = await start({**EMAIL, "model_list": [fake_upstream.model_entry("gpt-4o")]})
    gw = client.app[GATEWAY]
    await admin_post(client, "/user/new", {"user_id": "cy", "user_email": "cy@acme.test",
                                           "auto_create_key": False})
    made = await admin_post(client, "/key/generate", {"user_id": "cy"})
    again = await admin_post(client, f"/key/{made['key']}/regenerate", {})
    await settled(client)
    [regenerated] = inbox.mails
    assert regenerated["Subject"] == "Gatehouse: API Key Rotated"
    plain, html = inbox.parts(regenerated)
    assert again["key"] in plain and again["key"] in html and made["key"] not in plain

    nightly = await admin_post(client, "/key/generate", {
        "user_id": "cy", "auto_rotate": True, "rotation_interval": "1h"})
    due = datetime.fromisoformat(nightly["key_rotation_at"]).timestamp()
    assert list(await gw.key_rotations.run_once(due + 1)) == [nightly["token"]]
    await settled(client)
    rotated = inbox.mails[1]
    assert rotated["To"] == "cy@acme.test"
    secret = next(word for word in inbox.parts(rotated)[0].split() if word.startswith("sk-"))
    # The secret mailed is the one that works now; the old one does not.
    assert secret != nightly["key"]
    ok = await client.post("/v1/chat/completions", json=chat(), headers=bearer(secret))
    assert ok.status == 200
    old = await client.post("/v1/chat/completions", json=chat(), headers=bearer(nightly["key"]))
    assert old.status == 401


async def test_budget_alerts_go_out_once_per_ttl_across_gateways(
        inbox, postgres_url, redis_url, redis_namespace, gateway, fake_upstream, chat):
    config = {**EMAIL, "model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)],
              "general_settings": {**EMAIL["general_settings"], "master_key": MASTER,
                                   "database_url": postgres_url, "redis_url": redis_url,
                                   "redis_namespace": redis_namespace}}
    first, second = await gateway(config), await gateway(config)
    await admin_post(first, "/user/new", {"user_id": "di", "user_email": "di@acme.test",
                                          "auto_create_key": False})
    # A call costs 0.015: the soft budget is crossed by the second, 80% of 0.05 by the third.
    made = await admin_post(first, "/key/generate", {
        "user_id": "di", "key_alias": "di-key", "soft_budget": 0.02, "max_budget": 0.05})

    async def spend_three_calls(client):
        for _ in range(3):
            resp = await client.post("/v1/chat/completions", json=chat(),
                                     headers=bearer(made["key"]))
            assert resp.status == 200
            await settled(client)

    await spend_three_calls(first)
    subjects = sorted(mail["Subject"] for mail in inbox.mails)
    assert subjects == ["Gatehouse: Budget Alert", "Gatehouse: Soft Budget Crossed"]
    for mail in inbox.mails:
        plain, html = inbox.parts(mail)
        assert mail["To"] == "di@acme.test" and "di-key" in plain and "di-key" in html
        assert made["key"] not in plain + html

    # Spend set back to nothing: the other gateway crosses both thresholds again, within the
    # alerts' TTL, and sends nothing.
    await first.app[GATEWAY].accounting.flush()
    await admin_post(first, "/key/update", {"key": made["key"], "spend": 0})
    await spend_three_calls(second)
    assert len(inbox.mails) == 2


async def test_a_mail_that_cannot_be_sent_fails_nothing_and_is_logged_without_the_key(
        start, inbox, monkeypatch, caplog, fake_upstream, chat):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        monkeypatch.setenv("SMTP_PORT", str(unused.getsockname()[1]))
    caplog.set_level(logging.INFO, logger="gatehouse")
    client = await start({**EMAIL, "model_list": [fake_upstream.model_entry("gpt-4o", **PRICED)]})
    made = await admin_post(client, "/user/new", {
        "user_id": "ed", "user_email": "ed@acme.test", "send_invite_email": True})
    key = await admin_post(client, "/key/generate", {"user_id": "ed", "soft_budget": 0.001})
    resp = await client.post("/v1/chat/completions", json=chat(), headers=bearer(key["key"]))
    assert resp.status == 200
    await settled(client)

    failed = [r for r in caplog.records if r.getMessage().startswith("email not sent")]
    assert len(failed) == 2  # the invitation and the soft-budget alert
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert made["key"] not in logged and key["key"] not in logged
    assert inbox.mails == []


async def test_asking_for_an_email_that_cannot_be_sent_is_refused(start):
    client = await start()
    for path, body in (("/user/new", {"user_email": "fay@acme.test"}),
                       ("/key/generate", {})):
        resp = await client.post(path, json={**body, "send_invite_email": True},
                                 headers=ADMIN)
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error["param"] == "send_invite_email" and "alerting" in error["message"]
    users = await client.get("/user/list", headers=ADMIN)
    assert (await users.json())["users"] == []


def build(config):
    return create_app(config_from_dict(config), load=())


@pytest.mark.parametrize("config", [
    {"general_settings": {"alerting": ["email"]}},
    {"general_settings": {"alerts": ["email"]}},
    {"litellm_settings": {"callbacks": ["smtp_email"]}},
])
def test_email_without_its_settings_or_extra_stops_the_start(config, monkeypatch):
    for name in ("SMTP_HOST", "SMTP_SENDER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "aiosmtplib", None)
    with pytest.raises(ConfigError) as err:
        build(config)
    message = str(err.value)
    for needed in ("SMTP_HOST is not set", "SMTP_SENDER_EMAIL is not set",
                   "pip install 'gatehouse-proxy[email]'"):
        assert needed in message


def test_an_smtp_password_is_never_sent_unencrypted(monkeypatch):
    for name, value in {"SMTP_HOST": "smtp.acme.test", "SMTP_SENDER_EMAIL": "llm@acme.test",
                        "SMTP_PASSWORD": "hunter2-smtp", "SMTP_TLS": "False"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        build(EMAIL)
    assert "unencrypted" in str(err.value) and "hunter2-smtp" not in str(err.value)
    monkeypatch.setenv("SMTP_TLS", "True")
    assert build(EMAIL)[GATEWAY].notices.enabled


def test_alerting_other_than_email_is_warned_about_as_ignored(monkeypatch, caplog):
    monkeypatch.setenv("SMTP_HOST", "smtp.acme.test")
    monkeypatch.setenv("SMTP_SENDER_EMAIL", "llm@acme.test")
    app = build({"general_settings": {"alerting": ["email", "slack"]}})
    assert app[GATEWAY].notices.enabled
    assert ("config: general_settings.alerting: gatehouse does not implement LiteLLM's "
            "alerting to slack; ignored") in [r.getMessage() for r in caplog.records]

