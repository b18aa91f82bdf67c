"""What the core gives vendor plugins: env fallbacks for api_key/api_base, checked vendor
replies named by their vendor, the gateway's models for moderation, and a fake vendor for
tests."""

import asyncio

import aiohttp
import pytest
from pydantic import BaseModel, ValidationError

from gatehouse import Guardrail, GuardrailError, GuardrailParams, hookimpl
from gatehouse.config import config_from_dict
from gatehouse.plugins import load_plugins
from gatehouse.proxy.router import Router
from gatehouse.testing import VENDOR_OUTAGES, check_config


class VendorParams(GuardrailParams):
    env_api_key = ("ACME_API_KEY", "ACME_OLD_KEY")
    env_api_base = ("ACME_API_BASE",)
    default_api_base = "https://api.acme.example"
    requires_api_key = True


class Verdict(BaseModel):
    flagged: bool


def make(**params):
    return Guardrail("acme", VendorParams.model_validate({"guardrail": "acme", **params}))


def test_key_and_base_fall_back_to_the_environment_in_order(monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.setenv("ACME_OLD_KEY", "from-old-var")
    monkeypatch.delenv("ACME_API_BASE", raising=False)
    guardrail = make()
    assert guardrail.api_key() == "from-old-var"
    assert guardrail.params.api_base == "https://api.acme.example"
    monkeypatch.setenv("ACME_API_KEY", "from-new-var")
    monkeypatch.setenv("ACME_API_BASE", "http://127.0.0.1:9")
    assert make().api_key() == "from-new-var"
    assert make(api_key="from-config").api_key() == "from-config"
    assert make().params.api_base == "http://127.0.0.1:9"


def test_missing_required_key_names_the_variables(monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.delenv("ACME_OLD_KEY", raising=False)
    with pytest.raises(ValidationError, match="ACME_API_KEY or ACME_OLD_KEY"):
        make()


def test_api_base_must_be_http(monkeypatch):
    with pytest.raises(ValidationError, match="http"):
        make(api_key="k", api_base="ftp://nope")


async def test_post_checked_reads_the_reply_and_records_the_request(fake_vendor):
    vendor = await fake_vendor(reply={"flagged": True, "extra": 1})
    guardrail = make(api_key="k", api_base=vendor.url)
    try:
        raw, verdict = await guardrail.post_checked(
            vendor.url + "/v1/check", {"text": "hi"}, {"authorization": "Bearer k"}, Verdict)
    finally:
        await guardrail.stop()
    assert verdict.flagged is True and raw["extra"] == 1
    assert vendor.paths == ["/v1/check"] and vendor.last == {"text": "hi"}
    assert vendor.headers[-1]["authorization"] == "Bearer k"


@pytest.mark.parametrize("setup,needle", [
    (lambda v: setattr(v, "reply", {"flagged": "maybe"}), "flagged: bool_parsing"),
    (lambda v: setattr(v, "raw", b"{oops"), "malformed JSON"),
    (lambda v: setattr(v, "status", 503), "answered HTTP 503"),
])
async def test_vendor_failures_become_guardrail_errors_without_secrets(fake_vendor, setup,
                                                                        needle):
    vendor = await fake_vendor(reply={"flagged": False})
    setup(vendor)
    guardrail = make(api_key="sk-vendor-secret", api_base=vendor.url)
    try:
        with pytest.raises(GuardrailError) as err:
            await guardrail.post_checked(vendor.url + "/check", {"text": "private words"},
                                         {"authorization": "Bearer sk-vendor-secret"}, Verdict)
    finally:
        await guardrail.stop()
    assert needle in str(err.value)
    assert "sk-vendor-secret" not in str(err.value) and "private" not in str(err.value)


async def test_unreachable_vendor_is_a_guardrail_error(unused_tcp_port):
    guardrail = make(api_key="k")
    try:
        with pytest.raises(GuardrailError, match="unreachable"):
            await guardrail.post_json(f"http://127.0.0.1:{unused_tcp_port}/x", {}, {})
    finally:
        await guardrail.stop()
    assert isinstance(guardrail.http, aiohttp.ClientSession)  # made again on demand
    await guardrail.stop()


@pytest.mark.parametrize("how", VENDOR_OUTAGES)
async def test_every_listed_outage_is_a_guardrail_error(fake_vendor, how):
    vendor = await fake_vendor(reply={"flagged": False})
    base = vendor.break_as(how)
    guardrail = make(api_key="k", api_base=base, timeout=0.3)
    try:
        with pytest.raises((GuardrailError, TimeoutError)):
            async with asyncio.timeout(0.5):
                await guardrail.post_checked(base + "/check", {}, {}, Verdict)
    finally:
        await guardrail.stop()


def test_check_config_runs_the_real_command(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("guardrails: [{guardrail_name: g, params: {guardrail: nowhere}}]\n")
    result = check_config(config, load="")
    assert result.returncode == 2
    assert "unknown guardrail type 'nowhere'" in result.stderr


class AcmeGuardrail(Guardrail):
    vendor = "Acme Shield"


@pytest.mark.parametrize("how", ["http_500", "malformed_json", "refused"])
async def test_a_named_vendor_is_in_every_failure(fake_vendor, how):
    vendor = await fake_vendor(reply={"flagged": False})
    base = vendor.break_as(how)
    guardrail = AcmeGuardrail("acme", VendorParams.model_validate(
        {"guardrail": "acme", "api_key": "k", "api_base": base}))
    try:
        with pytest.raises(GuardrailError) as err:
            await guardrail.post_checked(base + "/check", {}, {}, Verdict)
    finally:
        await guardrail.stop()
    assert str(err.value).startswith("Acme Shield /check ")


async def test_models_moderate_posts_to_the_deployments_moderations_endpoint(fake_vendor):
    vendor = await fake_vendor(reply={"id": "modr-1", "results": [{"flagged": False}]})
    config = config_from_dict({"model_list": [{"model_name": "mod", "params": {
        "model": "openai/text-moderation-latest", "api_base": vendor.url + "/v1",
        "api_key": "sk-mod"}}]})
    router = Router(config.model_list, load_plugins(load=()).providers, "<config>")
    async with aiohttp.ClientSession() as http:
        router.start(http)
        answer = await router.moderate("mod", {"input": "some text"})
    assert answer == {"id": "modr-1", "results": [{"flagged": False}]}
    assert vendor.paths == ["/v1/moderations"]
    assert vendor.last == {"input": "some text", "model": "text-moderation-latest"}
    assert vendor.headers[-1]["authorization"] == "Bearer sk-mod"


class WordedParams(VendorParams):
    missing_api_key = "Acme: no key. Set ACME_API_KEY."


def test_a_missing_key_can_be_refused_in_the_plugins_own_words(monkeypatch):
    monkeypatch.delenv("ACME_API_KEY", raising=False)
    monkeypatch.delenv("ACME_OLD_KEY", raising=False)
    with pytest.raises(ValidationError, match="Acme: no key. Set ACME_API_KEY.") as error:
        WordedParams.model_validate({"guardrail": "acme"})
    assert "is required" not in str(error.value)


class StalledAcme(AcmeGuardrail):
    @hookimpl
    async def pre_call(self, call):
        await asyncio.Event().wait()


class StalledPlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("stalled_acme", StalledAcme)


async def test_a_named_vendor_that_gives_no_verdict_in_time_is_named(gateway, caplog):
    client = await gateway({"guardrails": [{"guardrail_name": "shield", "params": {
        "guardrail": "stalled_acme", "default_on": True, "timeout": 0.05}}]},
        plugins=[("stalled", StalledPlugin())])

    resp = await client.post("/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})

    assert resp.status == 504
    assert "no verdict from Acme Shield within 0.05s" in (await resp.json())["error"]["message"]
    assert "no verdict from Acme Shield within 0.05s" in caplog.text
