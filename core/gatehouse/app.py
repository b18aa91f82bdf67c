"""The aiohttp application: ``create_app(config)`` wires the gateway, middlewares and routes.

Each route family gets its services from its own typed app key, set by its ``setup``;
``GATEWAY`` holds the whole gateway for the CLI, tests and plugins' own routes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler

from .access.credentials import presented_key
from .access.key_routes import is_model_call
from .access.sessions import session_principal
from .admin import model_hub
from .admin import routes as admin_routes
from .admin import ui_login
from .config import Config
from .errors import ClientError, error_body, json_response
from .gateway import Gateway
from .guardrails.call import CALL, CLIENT_IP, PRINCIPAL, REQUEST_ID
from .ops import docs
from .ops import logs
from .ops import metrics as ops_metrics
from .ops import routes as ops_routes
from .plugins import Plugins, load_plugins
from .proxy import routes as proxy_routes
from .proxy.headers import VERSION_HEADER, call_id
from .proxy.pipeline import CLIENT_CLOSED
from .proxy.schemas import BODY_TIMEOUT
from .ui import pages as ui_pages

log = logging.getLogger("gatehouse")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MB = 1024 * 1024

GATEWAY = web.AppKey("gateway", Gateway)


def create_app(config: Config, *, plugins: Plugins | None = None,
               extra_plugins: Iterable[tuple[str, Any]] = (),
               load: Iterable[str] | None = None,
               source: str = "config") -> web.Application:
    """Build the gateway application. Raises ConfigError / PluginError for a bad set-up.

    ``load`` limits which installed plugins load (see :func:`gatehouse.plugins.load_plugins`);
    ``extra_plugins`` adds ``(name, plugin)`` pairs that are not installed.
    """
    if plugins is None:
        plugins = load_plugins(extra_plugins, load=load)
    gateway = Gateway(config, plugins, source=source)
    app = web.Application(
        client_max_size=int(config.general_settings.max_request_size_mb * MB),
        # Pass-through endpoints last: they serve what no route of the gateway's own does,
        # once the caller is known.
        middlewares=[request_id_middleware(), access_log_middleware,
                     *gateway.tracing_middlewares(), error_middleware, auth_middleware,
                     gateway.pass_through.middleware],
        handler_args={"max_field_size": 16384},
    )
    app[GATEWAY] = gateway
    app[BODY_TIMEOUT] = config.general_settings.request_body_timeout
    app.on_response_prepare.append(id_headers)
    proxy_routes.setup(app, gateway.pipeline)
    ops_routes.setup(app, gateway.status)
    if gateway.metrics is not None:
        ops_metrics.setup(app, gateway.metrics)
    admin_routes.setup(app, gateway.admin, gateway.models, gateway.pass_through,
                       gateway.stored_pass_through)
    general = config.general_settings
    gateway.public_paths |= ui_login.setup(
        app, general, general.master_key.get_secret_value() if general.master_key else None,
        gateway.cache, lambda: gateway.http)
    plugins.pm.hook.register_routes(app=app, gateway=gateway)
    branding = docs.DocsSettings.from_env()
    gateway.public_paths |= docs.setup(app, branding) | model_hub.setup(
        app, gateway.admin, gateway.models,
        model_hub.Branding(branding.title, branding.description),
        everything=config.general_settings.enable_public_model_hub)
    login = app[ui_login.LOGIN]
    if login.ui_disabled:
        ui_pages.setup_disabled(app)
    else:
        ui_pages.setup(app, app[ui_login.SESSIONS], gateway.principals, config,
                       admin_only=login.admin_only, logout_url=login.logout_url)
    # Once every route is in: no pass-through endpoint may shadow one.
    gateway.pass_through.check_routes(app.router, source)
    app.cleanup_ctx.append(_gateway_lifetime)
    return app


async def _gateway_lifetime(app: web.Application):
    gateway = app[GATEWAY]
    await gateway.start()
    yield
    await gateway.stop()


def request_id_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Give every request an id of the gateway's own (never the client's: ids key the spend
    log, so a repeated id must not let a call go uncounted).

    A random prefix drawn when the app is built -- in each worker process, after the fork --
    plus a counter keeps ids unique across processes and machines without a random draw per
    request.
    """
    prefix = secrets.token_hex(6)
    counter = itertools.count(1)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = request_id = f"{prefix}{next(counter):010x}"
        # Every log line written while the request is served names it.
        logs.REQUEST_ID.set(request_id)
        return await handler(request)

    return middleware


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except (ConnectionResetError, asyncio.CancelledError):
        status = CLIENT_CLOSED
        raise
    finally:
        # The route's pattern, not the path: a path may carry a key (/key/{key}).
        resource = request.match_info.route.resource
        call = request.get(CALL)
        principal = request.get(PRINCIPAL)
        logs.log_access(request.get(REQUEST_ID), request.method, resource.canonical if resource else request.path,
                        status, began, call.model if call is not None else None,
                        principal.key_alias if principal is not None else None)


async def id_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response names its request id -- streams too, whose headers leave before the
    handler returns. ``x-litellm-call-id`` carries the client's own call id when it sent one
    (as LiteLLM does), else the request id."""
    # Not aiohttp's default, which names its version to anyone who asks.
    response.headers["Server"] = "gatehouse"
    response.headers[VERSION_HEADER[0]] = VERSION_HEADER[1]
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["x-request-id"] = request_id
        response.headers["x-litellm-call-id"] = call_id(request) or request_id


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as OpenAI-shaped JSON: never a traceback, never HTML."""
    try:
        return await handler(request)
    except ClientError as exc:
        return json_response(exc.body, status=exc.status, headers=exc.headers)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[GATEWAY].config.general_settings.max_request_size_mb
        return json_response(error_body(
            f"Request body is too large; the limit is {limit:g} MB",
            kind="invalid_request_error", code="413"), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.status != 404 else f"No route for {request.method} {request.path}"
        kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
        return json_response(error_body(message, kind=kind, code=str(exc.status)),
                             status=exc.status, headers={
                                 k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception:  # noqa: BLE001 - the last line of defence
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path,
                      request.get(REQUEST_ID))
        return json_response(error_body(
            f"Internal error; request id {request.get(REQUEST_ID)}", kind="internal_error",
            code="500"), status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    request[CLIENT_IP] = ip = gateway.ip_allow_list.client_ip(request)
    gateway.ip_allow_list.check(ip)
    if (request.path in gateway.public_paths or ui_pages.is_ui_page(request)
            or gateway.pass_through.is_open(request)):
        request[PRINCIPAL] = gateway.principals.anonymous
    else:
        key = presented_key(request, gateway.principals.key_header)
        # The admin UI's session cookie stands for a key on every route but the models':
        # a session has no key for spend and limits to be counted against.
        session = (await session_principal(request, request.app[ui_login.SESSIONS],
                                           gateway.principals)
                   if key is None and gateway.principals.enabled
                   and not is_model_call(request.path) else None)
        request[PRINCIPAL] = session or await gateway.principals.authenticate(
            key, request.path)
    return await handler(request)


KEEPALIVE_TIMEOUT = 75.0

# What a client is told about a request aiohttp's parser refused: never the parser's own
# message, which quotes the offending bytes (an Authorization header, say).
PARSER_FAULTS: dict[type[BaseException], str] = {
    http_exceptions.BadHttpMethod: "unknown or malformed HTTP method",
    http_exceptions.LineTooLong: "the request line or a header is longer than the gateway "
                                 "accepts",
    http_exceptions.InvalidHeader: "a malformed header",
    http_exceptions.InvalidURLError: "a malformed URL",
}


class _RequestHandler(RequestHandler):
    """A connection that answers what aiohttp refuses before any middleware runs -- requests
    its parser rejects -- in the OpenAI error shape. aiohttp offers no hook for these
    (aio-libs/aiohttp#3287); its own answer is plain text quoting the request's bytes, with a
    traceback logged for each, which lets anyone fill the log."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # error_middleware answers every failure of a handler, so what reaches here is the
        # parser's refusal of a request, always a 4xx.
        what = next((text for kind, text in PARSER_FAULTS.items() if isinstance(exc, kind)),
                    "not a valid HTTP request")
        log.info("refused a malformed request from %s: %s", request.remote, what)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has begun; no error can follow it")
        response = json_response(error_body(f"Malformed request: {what}",
                                            kind="invalid_request_error", code=str(status)),
                                 status=status, headers={"Server": "gatehouse"})
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # After answering, aiohttp reads what is left of the request body; a corrupt one (bad
        # gzip, say) raises again there, though the client has had its 400.
        if isinstance(kwargs.get("exc_info"), web.RequestPayloadError):
            log.info("closed a connection whose request body could not be read")
            return
        super().log_exception(*args, **kwargs)


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections are :class:`_RequestHandler` s; serve the gateway
    with this, not ``web.run_app``."""

    def __init__(self, app: web.Application, **kwargs: Any):
        # web.run_app's idle keep-alive, not the hour aiohttp's connections otherwise allow.
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _Server(server.request_handler, request_factory=server.request_factory,
                       handler_cancellation=server.handler_cancellation, **server._kwargs)
