"""The ``x-litellm-*`` headers LiteLLM's clients read on a call's reply.

What is the same for every call of a deployment is made once, with the deployment
(``router.deployment_headers``); here is what each call adds: the key's spend and limits as
known when it was authenticated, and on success the call's cost and timings.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..access.prices import Prices
    from ..guardrails.call import Call, Principal
    from .providers import Reply

# The LiteLLM release whose behaviour the gateway answers with: what its clients compare.
LITELLM_VERSION = "1.78.5"
VERSION_HEADER = ("x-litellm-version", LITELLM_VERSION)
MAX_CALL_ID = 128
# A refused or failed call cost nothing.
FAILED = {"x-litellm-response-cost": "0"}
KEY_LIMITS = (("max_budget", "x-litellm-key-max-budget"), ("tpm_limit", "x-litellm-key-tpm-limit"),
              ("rpm_limit", "x-litellm-key-rpm-limit"))


def call_id(request: web.Request) -> str | None:
    """The client's ``x-litellm-call-id``, echoed back when it is a plausible id. Only echoed:
    the gateway's own request id still keys the spend log, so a repeated id cannot hide a
    call."""
    sent = request.headers.get("x-litellm-call-id")
    if sent and len(sent) <= MAX_CALL_ID and sent.isprintable():
        return sent
    return None


def key_headers(principal: Principal) -> dict[str, str]:
    """A virtual key's spend and the limits it has (none for the master key)."""
    key = principal.key
    if key is None:
        return {}
    headers = {"x-litellm-key-spend": str(float(key.get("spend") or 0.0))}
    for column, header in KEY_LIMITS:
        if key.get(column) is not None:
            headers[header] = str(key[column])
    return headers


def succeeded(call: Call, reply: Reply, started: float, upstream_seconds: float,
              prices: Prices | None) -> None:
    """Add a JSON reply's cost and timings to its headers: the upstream's time, and the rest
    of the time since the call ``started`` (the gateway's overhead, guardrails included)."""
    upstream_ms = upstream_seconds * 1000
    headers = call.response_headers
    headers["x-litellm-response-duration-ms"] = f"{upstream_ms:.3f}"
    overhead_ms = (time.time() - started) * 1000 - upstream_ms
    headers["x-litellm-overhead-duration-ms"] = f"{overhead_ms:.3f}"
    cost = _cost(call.model, reply, prices) if prices is not None else 0.0
    if cost > 0:
        headers["x-litellm-response-cost"] = repr(cost)


def _cost(model: str, reply: Reply, prices: Prices) -> float:
    # Priced from the upstream's own count only: estimating from the text is the call log's
    # job, off the request path. peek() keeps the raw bytes the reply is sent as, and the
    # call log reuses its parse.
    usage = (reply.peek() or {}).get("usage")
    if not isinstance(usage, dict):
        return 0.0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens") or 0
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return 0.0
    return prices.cost(model, prompt, completion)
