"""The plugin API itself: every hookspec is documented, typed, and called by the gateway."""

import inspect
from pathlib import Path

from aiohttp import web

from gatehouse import Guardrail, GuardrailBlocked, hookimpl, hookspecs
from gatehouse.app import GATEWAY
from gatehouse.plugins import new_plugin_manager

CALLED: list[str] = []


def spec_names():
    return sorted(caller.name for caller in new_plugin_manager().hook.__dict__.values()
                  if hasattr(caller, "spec") and caller.spec is not None)


def test_every_hookspec_has_a_docstring_and_annotations():
    for name in spec_names():
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 60, f"{name} needs a docstring saying when it runs"
        assert "async" in doc.lower() or "synchronous" in doc.lower(), (
            f"{name}'s docstring must say whether it may be async")
        sig = inspect.signature(fn)
        assert all(p.annotation is not inspect.Parameter.empty
                   for p in sig.parameters.values()), f"{name} has untyped arguments"


class Everything(Guardrail):
    default_modes = ("pre_call", "during_call", "post_call", "logging_only")

    @hookimpl
    def pre_call(self, call, extra_body):
        CALLED.append("pre_call")

    @hookimpl
    async def during_call(self, call, extra_body):
        CALLED.append("during_call")

    @hookimpl
    def post_call(self, call, response, extra_body):
        CALLED.append("post_call")

    @hookimpl
    async def post_call_stream(self, call, chunk, stream, extra_body):
        CALLED.append("post_call_stream")

    @hookimpl
    def logging_only(self, call, record):
        CALLED.append("logging_only")

    @hookimpl
    def on_success(self, call, record):
        CALLED.append("on_success")


class EverythingPlugin:
    @hookimpl
    def register_guardrails(self, register):
        CALLED.append("register_guardrails")
        register("everything", Everything)

    @hookimpl
    def register_providers(self, register):
        CALLED.append("register_providers")

    @hookimpl
    def register_routes(self, app, gateway):
        CALLED.append("register_routes")
        async def everything(request):
            return web.json_response({})

        app.router.add_get("/everything", everything)

    @hookimpl
    async def startup(self, gateway):
        CALLED.append("startup")

    @hookimpl
    async def shutdown(self, gateway):
        CALLED.append("shutdown")

    @hookimpl
    async def on_failure(self, call, record, error):
        CALLED.append("on_failure")


class Blocker(Guardrail):
    @hookimpl
    def pre_call(self, call):
        raise GuardrailBlocked("no")


class BlockerPlugin:
    @hookimpl
    def register_guardrails(self, register):
        register("blocker", Blocker)


async def test_every_hookspec_is_called(gateway, chat):
    CALLED.clear()
    client = await gateway({"guardrails": [
        {"guardrail_name": "all", "params": {"guardrail": "everything", "default_on": True}},
        {"guardrail_name": "stop", "params": {"guardrail": "blocker"}},
    ]}, plugins=[("everything", EverythingPlugin()), ("blocker", BlockerPlugin())])
    assert (await client.post("/v1/chat/completions", json=chat())).status == 200
    await (await client.post("/v1/chat/completions", json=chat(stream=True))).read()
    assert (await client.post("/v1/chat/completions",
                              json=chat(guardrails=["stop"]))).status == 400
    assert (await client.get("/everything")).status == 200
    await client.app[GATEWAY].call_log.drain()
    await client.close()
    assert sorted(set(CALLED)) == spec_names()


def test_writing_plugins_doc_describes_every_hook_and_its_arguments():
    doc = (Path(__file__).parent.parent / "docs" / "writing-plugins.md").read_text()
    sections = {}
    for block in doc.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip().strip("`")] = body.split("\n## ")[0]
    for name in spec_names():
        assert name in sections, f"docs/writing-plugins.md has no '### `{name}`' section"
        for arg in inspect.signature(getattr(hookspecs, name)).parameters:
            assert arg in sections[name], f"the {name} section does not explain {arg!r}"
        body = sections[name].lower()
        assert "async" in body or "synchronous only" in body, f"{name}: sync or async?"
