"""What the guardrail verdict cache saves on a conversation: vendor calls and bytes sent per
request, and the latency a vendor guardrail adds, over conversations of ``--turns`` turns,
without the cache and with it (``cache_ttl``), against a gateway with no guardrail, all in the
same run.

Two guardrails in ``pre_call``, each against a fake vendor that answers after ``--vendor-ms``
(50 ms by default):

* ``openai_moderation`` (bundled): one vendor call per request with all the caller's text.
  Cached, each call carries only the messages the cache has not seen.
* ``per_text``: a classifier that takes one text per call (defined here), called for every
  message at once. Cached, only new messages are called for.

The model is the gateway's own ``mock/echo``, so the only network waits are the vendor's. A
conversation sends turn 1, then turns 1-2, ..., as a chat client does, and is repeated
``--rounds`` times with fresh texts (so the cache starts cold each time). Added latency is the
mean time per request less the no-guardrail gateway's on the same requests.

    python bench/verdict_cache.py                      # 10 turns, 50 ms vendor, 5 rounds
    python bench/verdict_cache.py --turns 20 --vendor-ms 80 --rounds 3
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from pathlib import Path

from aiohttp import ClientSession, web

from benchkit import Table, arguments, at_least_zero, count, run_async
from gatehouse import Guardrail, GuardrailBlocked, hookimpl
from gatehouse.app import create_app
from gatehouse.config import config_from_dict
from gatehouse.guardrails.text import request_texts

API_KEY = "sk-bench"


class FakeVendor:
    """A moderation API answering a clean verdict after a fixed delay; counts what it gets."""

    def __init__(self, delay: float):
        self.delay = delay
        self.calls = 0
        self.bytes = 0
        self.app = web.Application()
        self.app.router.add_post("/v1/{path:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.calls += 1
        await asyncio.sleep(self.delay)
        return web.json_response({"id": "modr-bench", "model": "omni-moderation-latest",
                                  "results": [{"flagged": False}]})


class PerText(Guardrail):
    """A classifier that judges one text per vendor call: every text of the request, at
    once."""

    cacheable = True

    @hookimpl
    async def pre_call(self, call, extra_body):
        answers = await asyncio.gather(*(
            self.post_json(f"{self.params.api_base}/classify", {"input": text})
            for text in request_texts(call.body) if text))
        if any(answer["results"][0]["flagged"] for answer in answers):
            raise GuardrailBlocked("flagged")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def gateway_config(vendor_url: str, kind: str | None, cache_ttl: float | None
                   ) -> dict[str, Any]:
    guardrails = [] if kind is None else [{"guardrail_name": "check", "litellm_params": {
        "guardrail": kind, "mode": "pre_call", "default_on": True,
        "api_key": API_KEY, "api_base": vendor_url + "/v1",
        **({"cache_ttl": cache_ttl} if cache_ttl else {})}}]
    return {"model_list": [{"model_name": "echo", "litellm_params": {"model": "mock/echo"}}],
            "guardrails": guardrails}


async def conversation(session: ClientSession, url: str, turns: int, tag: str) -> list[float]:
    """Seconds each request of one conversation took."""
    messages: list[dict[str, str]] = []
    took = []
    for turn in range(1, turns + 1):
        messages.append({"role": "user", "content": f"{tag}: question {turn}, please answer"})
        began = time.perf_counter()
        async with session.post(url + "/v1/chat/completions",
                                json={"model": "echo", "messages": messages}) as resp:
            reply = await resp.json()
            if resp.status != 200:
                raise SystemExit(f"the gateway answered {resp.status}: {reply}")
        took.append(time.perf_counter() - began)
        messages.append(reply["choices"][0]["message"])
    return took


SETUPS = {
    "none": (None, None),
    "openai_moderation": ("openai_moderation", None),
    "openai_moderation cached": ("openai_moderation", 3600),
    "per_text": ("verdict_cache:PerText", None),
    "per_text cached": ("verdict_cache:PerText", 3600),
}


async def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--turns", type=count, default=10)
    parser.add_argument("--vendor-ms", type=at_least_zero, default=50.0)
    parser.add_argument("--rounds", type=count, default=5)
    args = parser.parse_args()
    vendor = FakeVendor(args.vendor_ms / 1000)
    runners = []
    try:
        runner, vendor_url = await serve(vendor.app)
        runners.append(runner)
        urls = {}
        for name, (kind, ttl) in SETUPS.items():
            config = config_from_dict(gateway_config(vendor_url, kind, ttl),
                                      base_dir=Path(__file__).parent)
            runner, urls[name] = await serve(create_app(config, load=("openai_moderation",)))
            runners.append(runner)
        seconds = {name: 0.0 for name in urls}
        calls = {name: 0 for name in urls}
        sent = {name: 0 for name in urls}
        requests = args.turns * args.rounds
        async with ClientSession() as session:
            for round_ in range(args.rounds):
                for name, url in urls.items():
                    before = vendor.calls, vendor.bytes
                    seconds[name] += sum(await conversation(
                        session, url, args.turns, f"{name}-{round_}"))
                    calls[name] += vendor.calls - before[0]
                    sent[name] += vendor.bytes - before[1]
        print(f"{args.turns}-turn conversations x {args.rounds}, vendor {args.vendor_ms:g} ms")
        table = Table("<26", "  >14", "  >14", "  >12", "  >24")
        table.row("guardrail", "vendor calls", "vendor bytes", "added ms", "cached / uncached")
        table.row("", "per request", "per request", "per request", "calls  bytes  added ms")
        for name in SETUPS:
            if name == "none":
                continue
            added = (seconds[name] - seconds["none"]) / requests * 1000
            ratio = ""
            if name.endswith(" cached"):
                plain = name.removesuffix(" cached")
                plain_added = (seconds[plain] - seconds["none"]) / requests * 1000
                ratio = (f"{calls[name] / calls[plain]:.2f}  {sent[name] / sent[plain]:.2f}  "
                         f"{added / plain_added:.2f}")
            table.row(name, f"{calls[name] / requests:.2f}", f"{sent[name] / requests:.0f}",
                      f"{added:.1f}", ratio)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


if __name__ == "__main__":
    run_async(main())
