"""Relaying a stream: the gateway shares its event loop with every other call however fast the
upstream is, and records every call however the client ends it."""

import asyncio

from doubles import NEW_TEXTS, PLUGINS, guardrail
from gatehouse.proxy import pipeline


async def test_a_fast_upstreams_long_stream_lets_other_tasks_run_between_chunks(
        gateway, fake_upstream, chat):
    # Thousands of chunks written as fast as the socket takes them: the gateway finds most of
    # them already buffered, so reading the next one never has to wait.
    fake_upstream.chunks = ["x"] * 3000
    client = await gateway({"guardrails": [guardrail("n", mode="post_call", type_="new_texts",
                                                     default_on=True)]}, plugins=PLUGINS)
    stop = asyncio.Event()

    async def other_task():
        # Another call's work: it runs whenever the loop is free, marking the chunk log.
        while not stop.is_set():
            NEW_TEXTS.append("other task ran")
            await asyncio.sleep(0)

    ticking = asyncio.create_task(other_task())
    try:
        resp = await client.post("/v1/chat/completions", json=chat(stream=True))
        assert (await resp.text()).rstrip().endswith("data: [DONE]")
    finally:
        stop.set()
        await ticking
    runs, run = [], 0
    for entry in NEW_TEXTS:
        if entry == "other task ran":
            runs.append(run)
            run = 0
        elif entry[1]:  # a chunk with text went through the gateway
            run += 1
    assert sum(runs) + run == 3000
    # However much is buffered, no more than a few dozen chunks pass between two turns of
    # everything else the loop has to do.
    assert max(runs + [run]) <= pipeline.YIELD_EVERY
