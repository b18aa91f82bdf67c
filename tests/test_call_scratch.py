"""``Call.scratch``: a guardrail's own state carried from one mode of a call to a later one
(what ``pre_call`` replaced, restored by ``post_call``), kept per call and out of the log."""

from typing import Any

from gatehouse import Call, Guardrail, hookimpl
from gatehouse.app import GATEWAY


class Swap(Guardrail):
    """Swaps the user's text for a placeholder on the way up and back on the way down."""

    @hookimpl
    def pre_call(self, call: Call) -> None:
        message = call.body["messages"][0]
        call.scratch[self.name] = message["content"]
        message["content"] = f"[{self.name}]"

    @hookimpl
    def post_call(self, call: Call, response: dict[str, Any]) -> None:
        message = response["choices"][0]["message"]
        message["content"] = message["content"].replace(
            f"[{self.name}]", call.scratch.get(self.name, "nothing kept"))


class Plugin:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    @hookimpl
    def register_guardrails(self, register):
        register("swap", Swap)

    @hookimpl
    def on_success(self, record: dict[str, Any]) -> None:
        self.records.append(record)


def chat(content: str) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}


async def test_state_kept_in_pre_call_is_there_in_post_call_and_not_logged(gateway,
                                                                           fake_upstream):
    plugin = Plugin()
    client = await gateway({"guardrails": [
        {"guardrail_name": name, "params": {"guardrail": "swap", "default_on": True,
                                            "mode": [mode, "post_call"]}}
        for name, mode in (("one", "pre_call"), ("two", "post_call"))]},
        plugins=[("swap", plugin)])
    fake_upstream.decide = lambda body: f"you said {body['messages'][0]['content']} ([two])"
    resp = await client.post("/v1/chat/completions", json=chat("secret words"))
    assert fake_upstream.last["messages"][0]["content"] == "[one]"
    # Each guardrail has its own entry; one that kept nothing finds nothing.
    assert (await resp.json())["choices"][0]["message"]["content"] == \
        "you said secret words (nothing kept)"
    await client.app[GATEWAY].call_log.drain()
    (record,) = plugin.records
    assert "secret words" not in str({k: v for k, v in record.items() if k != "response"})
