"""``google_text_moderation`` as LiteLLM configures it, against a fake Cloud Natural Language
and a fake Google token endpoint: thresholds, what is sent, and credentials."""

from __future__ import annotations

import gatehouse_google_moderation
import pytest
from gatehouse.config import ConfigError
from gatehouse.gateway import StartupError
from gatehouse_google_moderation import GoogleModerationParams
from gatehouse_google_moderation.params import CATEGORIES

SERVICE_ACCOUNT = "gatehouse-test@example-project.iam.gserviceaccount.com"
# Each category as Google names it, in the order of params.CATEGORIES.
GOOGLE_NAMES = ("Toxic", "Insult", "Profanity", "Derogatory", "Sexual", "Death, Harm & Tragedy",
                "Violent", "Firearms & Weapons", "Public Safety", "Health",
                "Religion & Belief", "Illicit Drugs", "War & Conflict", "Politics", "Finance",
                "Legal")


def refused(category: str) -> dict:
    message = f"Violated content safety policy. Category={category}"
    return {"error": {"message": message, "details": {"error": message},
                      "type": "guardrail_violation", "param": None, "code": "400"}}


async def test_a_category_above_the_default_threshold_is_refused(
        with_callback, google, send_chat):
    google.reply = google.scores(Toxic=0.91, Insult=0.3)
    client = await with_callback()

    resp = await send_chat(client, "you are awful")

    assert resp.status == 400
    assert await resp.json() == refused('name: "Toxic" confidence: 0.91')
    assert resp.headers["x-litellm-applied-guardrails"] == "google_text_moderation"


async def test_the_threshold_itself_passes(with_callback, google, send_chat):
    google.reply = google.scores(Toxic=0.8)
    client = await with_callback()

    assert (await send_chat(client, "hello")).status == 200


async def test_the_global_threshold_is_configurable(with_callback, google, send_chat):
    google.reply = google.scores(Toxic=0.3, Insult=0.5)
    client = await with_callback(google_moderation_confidence_threshold=0.4)

    resp = await send_chat(client, "hello")

    assert await resp.json() == refused('name: "Insult" confidence: 0.5')


@pytest.mark.parametrize("spelling", ["{}_confidence_threshold", "{}_threshold"])
@pytest.mark.parametrize(("category", "google_name"), list(zip(CATEGORIES, GOOGLE_NAMES)))
async def test_every_category_threshold_in_both_spellings(
        with_callback, google, send_chat, category, google_name, spelling):
    # Every category scores 0.5; only the one with its own low threshold is over it.
    google.reply = google.scores(**{name: 0.5 for name in GOOGLE_NAMES})
    client = await with_callback(google_moderation_confidence_threshold=0.9,
                                 **{spelling.format(category): 0.45})

    resp = await send_chat(client, "hello")

    assert resp.status == 400
    assert await resp.json() == refused(f'name: "{google_name}" confidence: 0.5')


async def test_a_category_threshold_above_the_global_one_lets_it_pass(with_callback, google,
                                                                      send_chat):
    google.reply = google.scores(Toxic=0.85)
    client = await with_callback(toxic_confidence_threshold=0.9)

    assert (await send_chat(client, "hello")).status == 200


async def test_both_spellings_of_one_threshold_are_refused(with_callback):
    with pytest.raises(ConfigError, match="violent_confidence_threshold and violent_threshold "
                                          "are the same setting"):
        await with_callback(violent_confidence_threshold=0.1, violent_threshold=0.2)


async def test_a_threshold_outside_zero_to_one_is_refused(with_callback):
    with pytest.raises(ConfigError, match="legal_threshold"):
        await with_callback(legal_threshold=1.5)


async def test_what_is_sent_to_google(with_callback, google, token_endpoint, send_chat):
    client = await with_callback()

    await send_chat(client, [{"role": "system", "content": "Be brief. "},
                        {"role": "user", "content": "Hello"}])

    assert google.paths == ["/v1/documents:moderateText"]
    assert google.last == {"document": {"type": "PLAIN_TEXT", "content": "Be brief. Hello"}}
    assert google.headers[-1]["authorization"] == f"Bearer {token_endpoint.issued[-1]}"
    (claims,) = token_endpoint.assertions
    assert claims["iss"] == SERVICE_ACCOUNT
    assert "https://www.googleapis.com/auth/cloud-language" in claims["scope"].split()


async def test_request_extra_body_is_merged(with_callback, google, send_chat):
    client = await with_callback()

    await send_chat(client, "hello", guardrails={"google_text_moderation": {"extra_body": {
        "modelVersion": "MODEL_VERSION_2", "document": {"content": "other"}}}})

    assert google.last == {"modelVersion": "MODEL_VERSION_2",
                           "document": {"type": "PLAIN_TEXT", "content": "hello"}}


async def test_the_access_token_is_reused_until_it_expires(with_callback, google, token_endpoint,
                                                           send_chat):
    client = await with_callback()

    await send_chat(client, "one")
    await send_chat(client, "two")

    assert len(token_endpoint.issued) == 1
    assert {h["authorization"] for h in google.headers} == {
        f"Bearer {token_endpoint.issued[0]}"}


async def test_a_token_about_to_expire_is_replaced(with_callback, google, token_endpoint, send_chat):
    token_endpoint.expires_in = 30  # within google-auth's refresh margin
    client = await with_callback()

    await send_chat(client, "one")
    await send_chat(client, "two")

    assert len(token_endpoint.issued) == 2
    assert google.headers[-1]["authorization"] == f"Bearer {token_endpoint.issued[1]}"


async def test_refused_credentials_fail_closed_naming_google(
        with_callback, google, token_endpoint, fake_upstream, send_chat, caplog):
    token_endpoint.status = 400
    client = await with_callback()

    resp = await send_chat(client, "hello")

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "'google_text_moderation'" in message
    assert "Google credentials gave no access token (RefreshError)" in message
    assert "Google credentials gave no access token" in caplog.text
    assert google.received == []


async def test_vendor_error_names_google_and_never_logs_the_token(
        with_callback, google, token_endpoint, send_chat, caplog):
    google.status = 500
    client = await with_callback()

    with caplog.at_level("DEBUG"):
        resp = await send_chat(client, "hello")

    assert resp.status == 502
    message = (await resp.json())["error"]["message"]
    assert "Google text moderation /v1/documents:moderateText answered HTTP 500" in message
    assert token_endpoint.issued[0] not in caplog.text
    assert token_endpoint.issued[0] not in await resp.text()


async def test_without_credentials_the_start_names_the_variable(gateway, monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(StartupError, match="set GOOGLE_APPLICATION_CREDENTIALS"):
        await gateway({"litellm_settings": {"callbacks": ["google_text_moderation"]}},
                      plugins=[("google_moderation", gatehouse_google_moderation)])


def test_the_default_endpoint_is_googles():
    params = GoogleModerationParams.model_validate({"guardrail": "google_text_moderation"})
    assert params.google_moderation_api_base == "https://language.googleapis.com"
    assert params.thresholds() == dict.fromkeys(CATEGORIES, 0.8)
