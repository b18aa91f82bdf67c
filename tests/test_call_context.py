"""What a guardrail's hooks get of one call besides its body: the client's headers, and a
scratch space that lasts from its pre_call hook to its post_call hook on that call alone."""

from typing import Any

from gatehouse import Call, Guardrail, hookimpl


class Remembers(Guardrail):
    """Keeps the client's x-probe header at pre_call and writes it into the reply."""

    @hookimpl
    def pre_call(self, call: Call) -> None:
        call.scratch[self.name] = call.headers.get("x-probe", "none")

    @hookimpl
    def post_call(self, call: Call, response: dict[str, Any]) -> None:
        response["choices"][0]["message"]["content"] = call.scratch[self.name]


class Plugin:
    @hookimpl
    def register_guardrails(self, register):
        register("remembers", Remembers)


async def test_headers_and_scratch_reach_the_hooks_of_that_call_only(gateway):
    client = await gateway({"guardrails": [{"guardrail_name": "memo", "params": {
        "guardrail": "remembers", "mode": ["pre_call", "post_call"], "default_on": True}}]},
        plugins=[("remembers", Plugin())])
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}

    first = await client.post("/v1/chat/completions", json=body, headers={"X-Probe": "one"})
    second = await client.post("/v1/chat/completions", json=body)

    assert (await first.json())["choices"][0]["message"]["content"] == "one"
    assert (await second.json())["choices"][0]["message"]["content"] == "none"
