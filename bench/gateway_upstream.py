"""A minimal OpenAI-compatible upstream for the overhead benchmark.

It answers every ``POST /v1/chat/completions`` with one chat completion serialized at start-up
(a request with ``"stream":true`` gets it as an event stream, also serialized at start-up: a
chunk per word, the finish chunk, the usage chunk when ``include_usage`` asks for it), so the
upstream costs as little as possible and what the benchmark measures through the gateway
is the gateway. It binds port 0 on loopback and prints ``PORT <n>`` once it listens, which lets
the benchmark start it without racing another process for a port.

Run alone:  python bench/gateway_upstream.py [--port N]
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiohttp import web

from benchkit import arguments, run_async

COMPLETION = json.dumps({
    "id": "chatcmpl-bench0000000000000000000000",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-upstream",
    "system_fingerprint": "fp_bench",
    "choices": [{
        "index": 0,
        "message": {
            "role": "assistant",
            "content": "TCP is connection-oriented and guarantees ordered, reliable delivery with "
                       "retransmission and flow control. UDP is connectionless and sends "
                       "independent datagrams with no delivery or ordering guarantees, trading "
                       "reliability for lower latency and overhead.",
            "refusal": None,
        },
        "logprobs": None,
        "finish_reason": "stop",
    }],
    "usage": {"prompt_tokens": 31, "completion_tokens": 44, "total_tokens": 75},
}, separators=(",", ":")).encode()

def _sse(chunks: list[dict]) -> bytes:
    return b"".join(b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"
                    for c in chunks)


def _stream_events() -> tuple[bytes, bytes]:
    """The completion as a stream's events, and its usage chunk with the final [DONE]."""
    reply = json.loads(COMPLETION)
    head = {key: reply[key] for key in ("id", "created", "model", "system_fingerprint")}
    head["object"] = "chat.completion.chunk"
    words = reply["choices"][0]["message"]["content"].split(" ")
    pieces = [word + " " for word in words[:-1]] + words[-1:]
    chunks = [{**head, "choices": [{"index": 0, "delta": {"content": piece},
                                    "logprobs": None, "finish_reason": None}]}
              for piece in pieces]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                        "finish_reason": "stop"}]})
    usage = _sse([{**head, "choices": [], "usage": reply["usage"]}])
    return _sse(chunks), usage + b"data: [DONE]\n\n"


STREAM, STREAM_END = _stream_events()
STREAM_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
NOT_FOUND = b'{"error":{"message":"not found","type":"invalid_request_error","code":"404"}}'
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


async def handle(request: web.BaseRequest) -> web.StreamResponse:
    # Reading the body keeps the connection reusable and mirrors what a real upstream must do.
    body = await request.read()
    if request.method == "POST" and request.path in CHAT_PATHS:
        if b'"stream":true' not in body:
            return web.Response(body=COMPLETION, content_type="application/json")
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        await response.write(STREAM)
        await response.write(STREAM_END if b'"include_usage":true' in body
                             else b"data: [DONE]\n\n")
        await response.write_eof()
        return response
    return web.Response(body=NOT_FOUND, status=404, content_type="application/json")


async def serve(port: int) -> None:
    server = web.Server(handle, access_log=None)
    runner = web.ServerRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    args = parser.parse_args()
    run_async(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
