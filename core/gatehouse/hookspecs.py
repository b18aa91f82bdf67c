"""The Gatehouse plugin API: every hook a plugin or a guardrail may implement.

Two kinds of implementers meet here:

* **Plugin modules** (found through the ``gatehouse`` entry-point group) implement the
  registration and lifecycle hooks, and may implement ``on_success`` / ``on_failure`` as global
  callbacks that see every call.
* **Guardrail instances** (one per ``guardrails:`` entry in config.yaml, registered under their
  ``guardrail_name``) implement the event-mode hooks. A call runs a guardrail's hooks only when the
  guardrail is selected for that call and the hook's mode is among the guardrail's configured
  modes.

Every event-mode hook and callback may be ``async def``; the core awaits it. Guardrail hooks run
one guardrail at a time in config order (``during_call``: all at once, concurrently with the
upstream call), each under its own ``timeout`` and ``on_error`` policy. A hook implementation may
declare any subset of a hook's arguments, as pluggy allows.

What a hook is handed may be a copy, and no hook can tell: for a guardrail with
``enforce: false``, a shadow (``shadow_of``) or one that may be demoted past its
``latency_budget_ms``, ``call`` (its ``body``), ``response``, ``chunk`` and ``record`` are copies
whose changes the core compares and records, or adopts when the run is let to enforce. A hook
must therefore write only into what it is handed and ``call.scratch``, never keep references
into the body between hooks, and may run off the request path after the client got its reply.
For a guardrail class with ``cacheable = True`` and ``cache_ttl`` set, ``pre_call`` and
``during_call`` on a chat request see ``call.body`` with only the messages whose verdicts are
not cached (the rest of the body as sent), and may not be called at all when every message is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from .guardrails.call import Call, StreamState
    from .gateway import Gateway

hookspec = pluggy.HookspecMarker("gatehouse")


# --- registration and lifecycle (plugin modules) -------------------------------------------------


@hookspec
def register_guardrails(register: Callable[..., None]) -> None:
    """Offer guardrail types. Runs once, when the gateway is built, before config is checked.

    Call ``register(type_name, guardrail_class, aliases=())`` once per type. ``guardrail_class`` is
    a subclass of :class:`gatehouse.Guardrail`; ``type_name`` is what ``params.guardrail`` names in
    config.yaml; ``aliases`` are extra names accepted in the ``callbacks:`` shorthand (e.g.
    ``hide_secrets``). Registering a name another distribution already registered is a start-up
    error naming both. Synchronous only.
    """


@hookspec
def register_providers(register: Callable[..., None]) -> None:
    """Offer upstream providers. Runs once, when the gateway is built.

    Call ``register(prefix, provider_class)``; a model whose ``params.model`` is
    ``"<prefix>/<name>"`` is served by ``provider_class`` (a subclass of
    :class:`gatehouse.proxy.providers.Provider`). Synchronous only.
    """


@hookspec
def register_routes(app: web.Application, gateway: Gateway) -> None:
    """Add HTTP routes to the gateway. Runs once, when the application is built.

    Use ``app.router.add_get(...)`` and friends. Routes are behind the gateway's middlewares
    (request id, body limit, auth, OpenAI-shaped errors). Synchronous only.
    """


@hookspec
def startup(gateway: Gateway) -> None:
    """Runs once when the server starts, inside the event loop, after guardrails have started.

    Open connections or start background tasks here. May be async. Raising stops the start-up
    with the error shown.
    """


@hookspec
def shutdown(gateway: Gateway) -> None:
    """Runs once when the server stops, before guardrails stop. Close what ``startup`` opened.

    May be async. Errors are logged and do not stop other shutdown hooks.
    """


# --- event modes (guardrail instances, selected per call) -----------------------------------------


@hookspec
def pre_call(call: Call, extra_body: dict[str, Any]) -> None:
    """Mode ``pre_call``: runs before the upstream call, one guardrail at a time in config order.

    May rewrite the request in place (``call.body``: messages, prompt, input); the next guardrail
    and the upstream see the change (unless the guardrail does not enforce; see above). With
    the verdict cache, ``call.body["messages"]`` holds only the messages not judged before. ``extra_body`` is what the request passed for this guardrail
    in ``"guardrails": {name: {"extra_body": {...}}}`` (empty dict otherwise). Raise
    :class:`gatehouse.GuardrailBlocked` to refuse the call, or
    :class:`gatehouse.GuardrailAnswered` to answer it with the guardrail's own text instead of
    the upstream's; any other exception or a timeout is handled by the guardrail's ``on_error``.
    May be async.
    """


@hookspec
def during_call(call: Call, extra_body: dict[str, Any]) -> None:
    """Mode ``during_call``: runs concurrently with the upstream call (and with other
    ``during_call`` guardrails). The reply is held until every one has finished.

    Sees the request as sent upstream; changes to it have no effect. Raise
    :class:`gatehouse.GuardrailBlocked` to discard the reply and refuse the call, or
    :class:`gatehouse.GuardrailAnswered` to discard it and answer with the guardrail's own text.
    May be async.
    """


@hookspec
def post_call(call: Call, response: dict[str, Any], extra_body: dict[str, Any]) -> None:
    """Mode ``post_call``: runs after a successful upstream reply, one guardrail at a time in
    config order, before the client sees the reply.

    ``response`` is the parsed OpenAI response body; rewrite it in place (e.g.
    ``response["choices"][0]["message"]["content"]``). Raise :class:`gatehouse.GuardrailBlocked`
    to replace the reply with an error. For a streamed call a guardrail that does not implement
    ``post_call_stream`` gets this hook once, on the assembled reply, and the stream's content is
    held back until it passes. May be async.
    """


@hookspec
def post_call_stream(
    call: Call, chunk: dict[str, Any], stream: StreamState, extra_body: dict[str, Any]
) -> None:
    """Mode ``post_call`` on a streamed call: runs for every chunk, in config order, before the
    chunk is sent.

    ``chunk`` is the parsed SSE chunk (rewrite ``choices[i]["delta"]["content"]`` in place to
    change what is sent). ``stream.new_texts`` holds the text this chunk brought to each choice's
    content, refusal and tool calls' arguments; ``stream.done`` is true on the last call, which comes with
    an empty chunk (and empty ``new_texts``) after the upstream finished. To scan in time linear
    in the reply, read ``new_texts`` and keep what must carry over between chunks (a tail of
    ``stream_holdback`` characters per text) in ``stream.scratch[<guardrail name>]``.
    ``stream.text``, ``texts`` and ``all_texts`` hold the whole text so far, this chunk included,
    but join it again on each read: quadratic if read on every chunk. Content within
    ``Guardrail.stream_holdback`` characters of the end is not yet sent to the client, so a match
    that spans chunks can still be stopped. Raise
    :class:`gatehouse.GuardrailBlocked` to end the stream with an error event; nothing more is
    sent. May be async.

    A guardrail in ``post_call`` mode without a ``post_call`` hook gets non-streamed replies here
    too, as one chunk holding the whole reply followed by the ``done`` call; what it writes into
    that chunk's content is written into the reply.
    """


@hookspec
def logging_only(call: Call, record: dict[str, Any]) -> None:
    """Mode ``logging_only``: runs off the request path, after the reply was sent, on the log
    record only (``record["request"]``, ``record["response"]``).

    Mask what must not be logged by rewriting ``record`` in place; the client and the upstream
    are not affected. Exceptions are logged and the record is dropped (fail closed: an unmasked
    record is never passed on). With ``store_prompts_in_spend_logs`` the masked request and
    response are also what the call's spend row keeps. May be async.
    """


# --- callbacks (plugin modules: every call; guardrails: when selected) ----------------------------


@hookspec
def on_success(call: Call, record: dict[str, Any]) -> None:
    """Runs off the request path after a call succeeded, with the (masked) log record: request,
    response, model, timings, guardrails applied. For spend, audit, traces. Must not rewrite the
    record. Exceptions are logged and ignored. May be async.

    ``record["guardrail_information"]`` lists every guardrail selected for the call, once per
    mode, as LiteLLM logs them: ``guardrail_name``, ``guardrail_provider`` (its type),
    ``guardrail_mode``, ``guardrail_status`` (``success``, ``guardrail_intervened``: it blocked,
    answered or masked; ``guardrail_failed_to_respond``: its vendor failed or timed out, or it
    crashed; ``not_run``: the call never reached it), ``start_time`` / ``end_time`` (epoch
    seconds, null when not run), ``duration`` (seconds inside the guardrail),
    ``masked_entity_count`` (entity type -> count), ``guardrail_response`` (the vendor's answer,
    credentials removed) and ``status_reason`` (why it failed or did not run); null when no
    guardrail was selected. ``call.guardrail_runs`` holds the same as typed records
    (``gatehouse.guardrails.monitoring.GuardrailRun``).
    """


@hookspec
def on_failure(call: Call, record: dict[str, Any], error: dict[str, Any]) -> None:
    """Runs off the request path after a call failed (blocked by a guardrail, upstream error,
    bad request once a model was known), with the log record and ``error``:
    ``{"status": <HTTP status>, "body": <the OpenAI-style error body the client received>}``.
    Exceptions are logged and ignored. May be async. ``record["guardrail_information"]`` is as
    for ``on_success``: a guardrail the failure kept from running says ``not_run`` and why.
    """
