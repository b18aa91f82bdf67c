"""A fake Bedrock runtime that checks each request's SigV4 signature as AWS does and judges
text the way a configured Bedrock guardrail would: "forbidden" is a denied topic, e-mail
addresses are masked."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gatehouse_bedrock
import pytest
import pytest_asyncio
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIAGATEHOUSETEST0001"
SECRET_KEY = "gatehouse/bedrock/test/secret/key/0001"
REGION = "eu-central-1"
EMAIL = re.compile(r"\S+@\S+\.\w+")
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)"
                   r"/(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
                   r"Signature=(?P<signature>[0-9a-f]{64})")


def signature_problem(headers: dict[str, str], path: str, body: bytes,
                      secret_for: Callable[[str], str | None]) -> str | None:
    """What AWS would refuse in this request's signature, or None. ``secret_for`` gives the
    secret key of an access key the fake knows."""
    match = _AUTH.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "Missing Authentication Token"
    secret = secret_for(match["key"])
    if secret is None:
        return "The security token included in the request is invalid."
    signed = match["signed"].split(";")
    request = AWSRequest(method="POST", url=f"http://{headers['host']}{path}", data=body,
                         headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(match["key"], secret,
                                   headers.get("x-amz-security-token")),
                       match["service"], match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)),
                                request)
    if expected != match["signature"]:
        return ("The request signature we calculated does not match the signature you "
                "provided.")
    return None


def judge(body: dict[str, Any]) -> dict[str, Any]:
    texts = [item["text"]["text"] for item in body["content"]]
    usage = {"topicPolicyUnits": 1, "contentPolicyUnits": 0, "wordPolicyUnits": 0,
             "sensitiveInformationPolicyUnits": 1}
    if any("forbidden" in text for text in texts):
        return {"action": "GUARDRAIL_INTERVENED", "usage": usage,
                "outputs": [{"text": "Sorry, I can't talk about that."}],
                "assessments": [{"topicPolicy": {"topics": [
                    {"name": "Forbidden", "type": "DENY", "action": "BLOCKED"}]},
                    "wordPolicy": {"customWords": [{"match": "forbidden",
                                                    "action": "BLOCKED"}]}}]}
    found = [m.group() for text in texts for m in EMAIL.finditer(text)]
    if found:
        return {"action": "GUARDRAIL_INTERVENED", "usage": usage,
                "outputs": [{"text": EMAIL.sub("{EMAIL}", text)} for text in texts],
                "assessments": [{"sensitiveInformationPolicy": {"piiEntities": [
                    {"type": "EMAIL", "match": m, "action": "ANONYMIZED"} for m in found],
                    "regexes": []}}]}
    return {"action": "NONE", "outputs": [], "assessments": [{}], "usage": usage}


@pytest_asyncio.fixture
async def bedrock(fake_vendor):
    """The fake Bedrock runtime: ``secret_for(access_key)`` gives the secret of a key it accepts;
    a request whose signature fails is answered 403 as AWS answers it."""
    fake = await fake_vendor()
    fake.secret_for = {ACCESS_KEY: SECRET_KEY}.get
    fake.bearer = None  # a Bedrock API key it accepts instead of a signature

    def decide(path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = fake.headers[-1]
        if fake.bearer is not None and headers.get("authorization") == f"Bearer {fake.bearer}":
            problem = None
        else:
            problem = signature_problem(headers, path, fake.bodies[-1], fake.secret_for)
        fake.status = 403 if problem else 200
        return {"message": problem} if problem else judge(body)

    fake.decide = decide
    return fake


@pytest.fixture
def signed_params(bedrock, aws_env):
    return {"guardrailIdentifier": "gr-test-1", "guardrailVersion": "DRAFT",
            "aws_region_name": REGION, "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY, "aws_bedrock_runtime_endpoint": bedrock.url}


@pytest.fixture
def bedrock_gateway(gateway, signed_params):
    """``await bedrock_gateway(mode=..., **params)``: a gateway whose guardrail ``bedrock-guard``
    (on for every call) applies the fake's guardrail, signing with test keys."""

    async def make(mode: Any = "pre_call", **params: Any):
        config = {"guardrails": [{"guardrail_name": "bedrock-guard", "litellm_params": {
            "guardrail": "bedrock", "mode": mode, "default_on": True,
            **signed_params, **params}}]}
        return await gateway(config, plugins=[("bedrock", gatehouse_bedrock)])

    return make
