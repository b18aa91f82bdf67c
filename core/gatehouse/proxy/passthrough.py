"""Pass-through endpoints (``general_settings.pass_through_endpoints``, and those stored
through ``POST /config/pass_through_endpoint``): routes of the gateway's that forward a
request to another API as it is, with headers of the operator's.

A request reaches an endpoint only when no route of the gateway's own matches its path, so
an endpoint can never take a built-in route's place; those that would try are refused when the
gateway starts (:meth:`PassThrough.problems`). An endpoint with ``auth: true`` takes a virtual
key as the LLM routes do, and is held to the key's budgets and rate limits, the ``pre_call``
guardrails (on a JSON body, call type ``pass_through_endpoint``) and a spend row of its
``cost_per_request``. The reply is relayed as it arrives -- an event stream chunk by chunk.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, MultiDict
from yarl import URL

from ..access.credentials import KEY_HEADERS
from ..access.roles import check_llm_route
from ..config import ConfigError
from ..config.general_settings import PassThroughEndpoint
from ..errors import ClientError, json_response
from ..guardrails.base import GuardrailBlocked
from ..guardrails.call import CLIENT_IP, PRINCIPAL, REQUEST_ID, Call
from ..guardrails.dispatch import run_in_order
from .calllog import Outcome
from .headers import FAILED, key_headers
from .pipeline import CLIENT_CLOSED, CLIENT_CLOSED_BODY, YIELD_EVERY, reply_headers
from .providers import Reply, UpstreamError
from .schemas import check_depth, read_raw

if TYPE_CHECKING:
    from ..access.gate import CallGate
    from ..guardrails.selection import Selection, Selector
    from .calllog import CallLog

log = logging.getLogger("gatehouse.passthrough")

CALL_TYPE = "pass_through_endpoint"
# What the spend row and log record name as the model: the call names none.
MODEL = "unknown"
# Meaningful for one connection only (RFC 9110 7.6.1), so never relayed either way.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
NOT_SENT = HOP_BY_HOP | {"host", "content-length"}
# The session decompresses replies, so their encoding and length no longer hold.
NOT_RETURNED = HOP_BY_HOP | {"content-encoding", "content-length"}
# LiteLLM's 600 s, between two reads rather than for the whole reply: a stream may last longer.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=600)
# An upstream's error body is read this far to be the message.
MAX_ERROR_BYTES = 64 * 1024
ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
LANGFUSE_KEYS = ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY")
VERSION_SEGMENT = re.compile(r"v\d+")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint ready to serve: its target parsed and its headers' variables read."""

    entry: PassThroughEndpoint
    target: URL
    headers: tuple[tuple[str, str], ...]
    methods: frozenset[str]
    # The row's id for an endpoint stored in the database; None for the config's.
    endpoint_id: str | None = None

    @property
    def path(self) -> str:
        return self.entry.path


def build(entry: PassThroughEndpoint, where: str, endpoint_id: str | None = None,
          environ: Any = os.environ) -> Endpoint:
    """An endpoint from its entry, or a ConfigError naming each mistake (``where`` says which
    entry)."""
    problems = []
    segments = entry.path.split("/")[1:]
    if any(s in ("", ".", "..") for s in segments):
        problems.append(f"{where}.path: {entry.path!r} has an empty, '.' or '..' segment")
    target = URL(entry.target)
    if target.scheme not in ("http", "https") or not target.host:
        problems.append(f"{where}.target: must be an http:// or https:// URL (python adapter "
                        f"targets are not supported)")
    headers: dict[str, str] = {}
    for name, value in entry.headers.items():
        unset = [var for var in ENV_REF.findall(value) if var not in environ]
        if unset:
            problems.append(f"{where}.headers.{name}: environment variable {unset[0]} is not "
                            f"set")
        else:
            headers[name] = ENV_REF.sub(lambda m: environ[m.group(1)], value)
    if problems:
        raise ConfigError("; ".join(problems), problems)
    if all(key in headers for key in LANGFUSE_KEYS):
        # Langfuse takes its two keys as one Basic credential, as LiteLLM sends them.
        pair = f"{headers.pop(LANGFUSE_KEYS[0])}:{headers.pop(LANGFUSE_KEYS[1])}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return Endpoint(entry, target, tuple(headers.items()), frozenset(entry.methods),
                    endpoint_id)


def build_all(entries: list[PassThroughEndpoint]) -> list[Endpoint]:
    """The config's endpoints, or one ConfigError naming every mistake among them."""
    endpoints, problems = [], []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"general_settings.pass_through_endpoints[{i}]"
        if entry.path in seen:
            problems.append(f"{where}.path: {entry.path} is served by an earlier entry")
        seen.add(entry.path)
        try:
            endpoints.append(build(entry, where))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError("; ".join(problems), problems)
    return endpoints


class Table:
    """Endpoints by path: exact paths first, then the longest ``include_subpath`` prefix."""

    __slots__ = ("exact", "prefixes", "endpoints")

    def __init__(self, endpoints: Iterable[Endpoint]):
        self.endpoints = tuple(endpoints)
        self.exact = {e.path: e for e in self.endpoints}
        self.prefixes = tuple(sorted((e for e in self.endpoints if e.entry.include_subpath),
                                     key=lambda e: len(e.path), reverse=True))

    def __bool__(self) -> bool:
        return bool(self.endpoints)

    def match(self, path: str) -> Endpoint | None:
        found = self.exact.get(path)
        if found is not None:
            return found
        for endpoint in self.prefixes:
            if path.startswith(endpoint.path + "/"):
                return endpoint
        return None


@dataclass(frozen=True, slots=True)
class BuiltIn:
    """A route of the gateway's own: its path as registered, and how it matches."""

    path: str
    matches: Callable[[str], bool]


def built_in_routes(router: web.UrlDispatcher) -> list[BuiltIn]:
    routes = []
    for resource in router.resources():
        info = resource.get_info()
        if "path" in info:
            routes.append(BuiltIn(info["path"], info["path"].__eq__))
        elif "pattern" in info:
            routes.append(BuiltIn(resource.canonical, info["pattern"].fullmatch))
        elif "prefix" in info:  # static files
            prefix = info["prefix"].rstrip("/")
            routes.append(BuiltIn(prefix, lambda p, prefix=prefix: p.startswith(prefix + "/")))
    return routes


def area(path: str) -> str | None:
    """The part of the URL space a built-in route belongs to: its first segment, or its
    first two after a version (``/key/generate`` -> ``/key``, ``/v1/chat/completions`` ->
    ``/v1/chat``)."""
    segments = path.strip("/").split("/")
    count = 2 if VERSION_SEGMENT.fullmatch(segments[0]) and len(segments) > 1 else 1
    head = segments[:count]
    if not head[0] or any("{" in s for s in head):
        return None
    return "/" + "/".join(head)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class PassThrough:
    """The endpoints served now (the config's and the stored ones, one table swapped whole),
    and how a request to one is forwarded."""

    def __init__(self, endpoints: list[Endpoint], gate: CallGate, selector: Selector,
                 call_log: CallLog, *, keys: bool, key_header: str | None = None):
        self.config_endpoints = endpoints
        self.table = Table(endpoints)
        self.gate = gate
        self.selector = selector
        self.call_log = call_log
        # Whether the gateway has keys to check: auth: true means nothing without them.
        self.keys = keys
        # The headers a key arrives in: never sent to the target of an endpoint that took it.
        self.key_headers = frozenset({key_header.lower()} if key_header else KEY_HEADERS)
        self.routes: list[BuiltIn] = []
        self.http: aiohttp.ClientSession | None = None

    # --- set-up --------------------------------------------------------------------------------

    def check_routes(self, router: web.UrlDispatcher, source: str) -> None:
        """Refuse (ConfigError) configured endpoints that would shadow a built-in route or
        leave one of the gateway's own areas open; the routes are kept to check stored
        endpoints against."""
        self.routes = built_in_routes(router)
        problems = [problem for i, endpoint in enumerate(self.config_endpoints)
                    for problem in self.problems(
                        endpoint.entry, f"general_settings.pass_through_endpoints[{i}]")]
        if problems:
            raise ConfigError.in_file(source, *problems)

    def problems(self, entry: PassThroughEndpoint, where: str) -> list[str]:
        path = entry.path
        found = []
        for route in self.routes:
            if route.matches(path) or (entry.include_subpath and _under(route.path, path)):
                found.append(f"{where}.path: {path} would shadow the gateway's own route "
                             f"{route.path}; choose another path")
                break
        unknown = [name for name in entry.guardrails if name not in self.selector.guardrails]
        if unknown:
            found.append(f"{where}.guardrails: no guardrail is named {', '.join(unknown)}")
        if entry.auth and not self.keys:
            found.append(f"{where}.auth: true needs general_settings.master_key; without it "
                         f"the gateway checks no keys and {path} would be open to anyone")
        if not entry.auth:
            areas = {a for route in self.routes if (a := area(route.path)) is not None}
            taken = next((a for a in sorted(areas) if _under(path, a)), None)
            if taken is not None:
                found.append(f"{where}.auth: {path} lies under {taken}, where the gateway's "
                             f"own routes are; set auth: true or choose another path")
        return found

    def start(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    def serve(self, stored: list[Endpoint]) -> None:
        """Serve the config's endpoints and ``stored`` (a stored one whose path the config
        already serves is left out), replacing what was served in one swap."""
        taken = {e.path for e in self.config_endpoints}
        kept = []
        for endpoint in stored:
            if endpoint.path in taken:
                log.error("stored pass-through endpoint %s is not served: the config serves "
                          "that path", endpoint.path)
                continue
            taken.add(endpoint.path)
            kept.append(endpoint)
        self.table = Table([*self.config_endpoints, *kept])

    # --- per request ---------------------------------------------------------------------------

    def endpoint_for(self, request: web.Request) -> Endpoint | None:
        """The endpoint a request is for: only one no built-in route serves."""
        table = self.table
        if not table:
            return None
        missing = request.match_info.http_exception
        if missing is None or missing.status != 404:
            return None
        return table.match(request.path)

    def is_open(self, request: web.Request) -> bool:
        """Whether the request is for an endpoint that takes no key (the auth middleware
        asks)."""
        endpoint = self.endpoint_for(request)
        return endpoint is not None and not endpoint.entry.auth

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        endpoint = self.endpoint_for(request)
        if endpoint is None:
            return await handler(request)
        if request.method not in endpoint.methods:
            raise web.HTTPMethodNotAllowed(request.method, sorted(endpoint.methods))
        return await self.handle(request, endpoint)

    async def handle(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        started = time.time()
        principal = request[PRINCIPAL]
        raw = await read_raw(request) if request.body_exists else b""
        body = _json_object(raw, request.content_type)
        call = Call(request_id=request[REQUEST_ID], call_type=CALL_TYPE, model=MODEL,
                    body=body if body is not None else {}, principal=principal,
                    client_ip=request[CLIENT_IP], headers=request.headers,
                    response_headers=key_headers(principal),
                    cost_per_request=endpoint.entry.cost_per_request)
        selection = self.selector.select(call, endpoint.entry.guardrails or None, principal)
        try:
            return await self._serve(request, endpoint, call, selection, raw, body, started)
        finally:
            await self.gate.accounting.release(call)

    async def _serve(self, request: web.Request, endpoint: Endpoint, call: Call,
                     selection: Selection, raw: bytes, body: dict[str, Any] | None,
                     started: float) -> web.StreamResponse:
        try:
            check_llm_route(call.principal)
            await self.gate.admit(call)
            if body is not None and selection.pre_call:
                await run_in_order(selection.pre_call, call, {"call": call})
                # Sent as the guardrails left it (a masking one rewrites it in place).
                raw = orjson.dumps(call.body)
            upstream = await self._send(request, endpoint, raw)
        except GuardrailBlocked as blocked:
            status, error, headers = blocked.status, blocked.body(), {}
        except (ClientError, UpstreamError) as exc:
            status, error = exc.status, exc.body
            headers = exc.headers if isinstance(exc, ClientError) else {}
        except (ConnectionResetError, asyncio.CancelledError):
            await self.call_log.submit(
                call, selection, Outcome(started, CLIENT_CLOSED, error=CLIENT_CLOSED_BODY))
            raise
        else:
            return await self._relay(request, call, selection, upstream, started)
        await self.call_log.submit(call, selection, Outcome(started, status, error=error))
        return json_response(error, status=status,
                             headers={**reply_headers(call), **FAILED, **headers})

    async def _send(self, request: web.Request, endpoint: Endpoint,
                    raw: bytes) -> aiohttp.ClientResponse:
        """The target's reply, its body still to be read; a status of 300 or more is an
        error carrying the target's body as its message."""
        assert self.http is not None
        try:
            upstream = await self.http.request(
                request.method, self._url(request, endpoint), data=raw or None,
                headers=self._headers(request, endpoint), allow_redirects=False,
                timeout=TIMEOUT, skip_auto_headers=("Content-Type",))
        except TimeoutError:
            raise UpstreamError.make(504, f"Pass-through endpoint {endpoint.path}: the target "
                                          f"did not answer in time", "timeout") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError.make(502, f"Pass-through endpoint {endpoint.path}: the target "
                                          f"could not be reached ({type(exc).__name__})"
                                     ) from None
        if upstream.status < 300:
            return upstream
        try:
            message = (await upstream.content.read(MAX_ERROR_BYTES)).decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError):
            message = ""
        finally:
            upstream.release()
        raise UpstreamError.make(upstream.status, message)

    def _url(self, request: web.Request, endpoint: Endpoint) -> URL:
        url = endpoint.target
        if endpoint.entry.include_subpath and request.path != endpoint.path:
            subpath = request.path[len(endpoint.path):]
            # Decoded from %2e%2e, a '..' would climb out of the target's path.
            if "/." in subpath and any(s in (".", "..") for s in subpath.split("/")):
                raise ClientError(400, "A pass-through path may not contain '.' or '..' "
                                       "segments")
            url = url.with_path(url.path.rstrip("/") + subpath)
        sent = request.query
        defaults = endpoint.entry.default_query_params
        if not sent and not defaults:
            return url
        query = MultiDict(url.query)
        query.extend(sent)
        for name, value in defaults.items():
            if name not in sent:
                query.add(name, value)
        return url.with_query(query)

    def _headers(self, request: web.Request, endpoint: Endpoint) -> CIMultiDict[str]:
        """The client's headers if the endpoint forwards them (never the connection's own,
        nor the key an ``auth`` endpoint took), then the endpoint's, which win."""
        headers: CIMultiDict[str] = CIMultiDict()
        incoming = request.headers
        if endpoint.entry.forward_headers:
            dropped = NOT_SENT | {name.strip().lower() for value in
                                  incoming.getall("connection", ()) for name in value.split(",")}
            if endpoint.entry.auth:
                dropped |= self.key_headers
            for name, value in incoming.items():
                if name.lower() not in dropped:
                    headers.add(name, value)
        elif "content-type" in incoming:
            # Without it the target could not read the body.
            headers["Content-Type"] = incoming["content-type"]
        for name, value in endpoint.headers:
            headers[name] = value
        return headers

    async def _relay(self, request: web.Request, call: Call, selection: Selection,
                     upstream: aiohttp.ClientResponse, started: float) -> web.StreamResponse:
        """The target's reply as it arrives: nothing is held back, so an event stream reaches
        the client event by event."""
        outcome = Outcome(started, upstream.status)
        headers = CIMultiDict((name, value) for name, value in upstream.headers.items()
                              if name.lower() not in NOT_RETURNED)
        headers.update(reply_headers(call))
        if call.cost_per_request:
            headers["x-litellm-response-cost"] = repr(call.cost_per_request)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        if upstream.content_length is not None and "content-encoding" not in upstream.headers:
            response.content_length = upstream.content_length
        try:
            await response.prepare(request)
            relayed = 0
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                relayed += 1
                if relayed % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            outcome = Outcome(started, CLIENT_CLOSED, error=CLIENT_CLOSED_BODY)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The target broke off mid-reply: the client's connection is cut short too, as
            # the status has been sent.
            outcome = Outcome(started, 502, error=UpstreamError.make(
                502, f"the target broke off its reply ({type(exc).__name__})").body)
            response.force_close()
        finally:
            upstream.release()
            await self.call_log.submit(call, selection, outcome)
        return response


def _json_object(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """The body as the guardrails read it: a JSON object, or None for any other body (which
    is forwarded unread)."""
    if not raw or "json" not in content_type:
        return None
    body = Reply(raw).peek()
    if body is not None:
        check_depth(raw, body)
    return body
