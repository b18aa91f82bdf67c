"""``bedrock``: AWS Bedrock Guardrails' ApplyGuardrail on the request (``pre_call``,
``during_call``) and the reply (``post_call``).

Bedrock answers ``NONE`` (pass) or ``GUARDRAIL_INTERVENED`` with per-policy assessments. Any
item it ``BLOCKED`` refuses the call; when it only ``ANONYMIZED`` (masked) text, its masked
outputs replace the texts that were sent, in order -- if the params ask for masking.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import quote

import botocore.exceptions
import orjson
from gatehouse import (Call, Guardrail, GuardrailAnswered, GuardrailBlocked, GuardrailError,
                       GuardrailParams, hookimpl)
from gatehouse.guardrails.base import Models
from gatehouse.guardrails.text import Group, joined, last_user_group, replace_group, \
    request_groups, response_groups
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .credentials import NoCredentials, Signer

log = logging.getLogger("gatehouse.bedrock")

BLOCK_MESSAGE = "Violated guardrail policy"
# The model a blocked call's answer comes from, with disable_exception_on_block.
ANSWER_MODEL = "bedrock-guardrail"
DEFAULT_REGION = "us-west-2"
INTERVENED = "GUARDRAIL_INTERVENED"
# The longest part of an AWS error message passed on: enough to say what was wrong, too short
# to repeat much of a prompt back into a log.
AWS_MESSAGE_LIMIT = 200


class BedrockParams(GuardrailParams):
    env_api_key = ("AWS_BEARER_TOKEN_BEDROCK",)

    guardrailIdentifier: str = Field(min_length=1)
    guardrailVersion: str = Field(default="DRAFT", min_length=1)
    aws_region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_role_name: str | None = None
    aws_session_name: str | None = None
    aws_profile_name: str | None = None
    aws_web_identity_token: SecretStr | None = None
    aws_sts_endpoint: str | None = None
    aws_bedrock_runtime_endpoint: str | None = None
    mask_request_content: bool = False
    mask_response_content: bool = False
    disable_exception_on_block: bool = False
    experimental_use_latest_role_message_only: bool = False


class _Reply(BaseModel):
    # Strict: an unexpected shape is a failed check, never a silent pass.
    model_config = ConfigDict(strict=True)


class Output(_Reply):
    text: str


class ApplyReply(_Reply):
    action: Literal["GUARDRAIL_INTERVENED", "NONE"]
    outputs: list[Output] = Field(default_factory=list)
    assessments: list[dict[str, Any]] = Field(default_factory=list)


class Bedrock(Guardrail):
    #: Its verdict depends only on the texts it is sent (and its params): cache_ttl may cache it.
    cacheable = True
    vendor = "Bedrock"
    Params = BedrockParams
    params: BedrockParams

    def __init__(self, name: str, params: GuardrailParams) -> None:
        super().__init__(name, params)
        p = self.params
        region = (p.aws_region_name or os.environ.get("AWS_REGION_NAME")
                  or os.environ.get("AWS_REGION") or DEFAULT_REGION)
        host = p.aws_bedrock_runtime_endpoint or f"https://bedrock-runtime.{region}.amazonaws.com"
        self._url = (host.rstrip("/") + f"/guardrail/{quote(p.guardrailIdentifier, safe='')}"
                     f"/version/{quote(p.guardrailVersion, safe='')}/apply")
        self._where = self.where(self._url)
        self._signer = Signer(p, region)

    async def start(self, models: Models) -> None:
        try:
            await self._signer.start()
        except NoCredentials as exc:
            raise ValueError(str(exc)) from None
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise ValueError(f"cannot get AWS credentials: {exc}") from None

    @hookimpl
    async def pre_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        with self._answering():
            await self._apply("INPUT", self._request_groups(call),
                              self.params.mask_request_content, extra_body)

    @hookimpl
    async def during_call(self, call: Call, extra_body: dict[str, Any]) -> None:
        # The request is already upstream: nothing can be masked any more.
        with self._answering():
            await self._apply("INPUT", self._request_groups(call), False, extra_body)

    @hookimpl
    async def post_call(self, response: dict[str, Any], extra_body: dict[str, Any]) -> None:
        try:
            await self._apply("OUTPUT", list(response_groups(response)),
                              self.params.mask_response_content, extra_body)
        except GuardrailBlocked as blocked:
            if not self.params.disable_exception_on_block:
                raise
            _answer_instead(response, blocked.detail["bedrock_guardrail_response"])

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """``disable_exception_on_block``: a blocked request is answered, with a 200, by
        Bedrock's blocked-input text instead of an error."""
        try:
            yield
        except GuardrailBlocked as blocked:
            if not self.params.disable_exception_on_block:
                raise
            raise GuardrailAnswered(blocked.detail["bedrock_guardrail_response"],
                                    model=ANSWER_MODEL) from None

    def _request_groups(self, call: Call) -> list[Group]:
        if self.params.experimental_use_latest_role_message_only:
            turn = last_user_group(call.body)
            return [turn] if turn else []
        return list(request_groups(call.body))

    async def _apply(self, source: str, groups: list[Group], mask: bool,
                     extra_body: dict[str, Any]) -> None:
        groups = [group for group in groups if joined(group)]
        if not groups:
            return
        body = {**extra_body, "source": source,
                "content": [{"text": {"text": joined(group)}} for group in groups]}
        verdict = await self._ask(body)
        if verdict.action != INTERVENED:
            return
        matches = _matches(verdict.assessments)
        if any(item["action"] == "BLOCKED" for _, found in matches for item in found):
            raise GuardrailBlocked(BLOCK_MESSAGE, detail={
                "bedrock_guardrail_response": "".join(o.text for o in verdict.outputs),
                "guardrailIdentifier": self.params.guardrailIdentifier,
                "guardrailVersion": self.params.guardrailVersion,
                "assessments": [{"policy": policy, "matches": found}
                                for policy, found in matches]})
        if not mask:
            return
        if len(verdict.outputs) != len(groups):
            # Which masked text belongs where is unknown: sending the originals on would
            # send what Bedrock masked.
            raise GuardrailError(f"{self._where} masked {len(groups)} texts but answered "
                                 f"{len(verdict.outputs)}")
        for group, output in zip(groups, verdict.outputs):
            replace_group(group, output.text)

    async def _ask(self, body: dict[str, Any]) -> ApplyReply:
        raw_body = orjson.dumps(body)
        headers = await self._signer.headers("POST", self._url, raw_body)
        status, raw = await self.post_json_status(self._url, raw_body, headers,
                                                  answers=range(400, 600))
        if status >= 400:
            raise GuardrailError(f"{self._where} answered HTTP {status}: {_aws_message(raw)}")
        return self.read_reply(self._url, raw, ApplyReply)


def _matches(assessments: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each policy's items that did something, as ``(policy, [{"category", ...item}])``, the
    matched text left out: on a blocked reply it is exactly what is withheld."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for assessment in assessments:
        for policy, categories in assessment.items():
            if not isinstance(categories, dict):
                continue
            found = [{"category": category, **{k: v for k, v in item.items() if k != "match"}}
                     for category, items in categories.items() if isinstance(items, list)
                     for item in items
                     if isinstance(item, dict) and item.get("action") not in (None, "NONE")]
            if found:
                out.append((policy, found))
    return out


def _aws_message(raw: Any) -> str:
    message = None
    if isinstance(raw, dict):
        message = raw.get("message") or raw.get("Message")
        error = raw.get("error")
        if message is None and isinstance(error, dict):
            message = error.get("message")
    if not isinstance(message, str) or not message:
        return "Bedrock guardrail request failed"
    return message[:AWS_MESSAGE_LIMIT]


def _answer_instead(response: dict[str, Any], text: str) -> None:
    """``disable_exception_on_block``: the caller gets Bedrock's blocked-output text as the
    assistant's answer, with a 200."""
    response["model"] = ANSWER_MODEL
    response["choices"] = [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}]
