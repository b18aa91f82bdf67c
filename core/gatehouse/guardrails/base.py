"""The guardrail base class, its common params, and the verdicts a guardrail can reach."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

import aiohttp
import orjson
from multidict import CIMultiDict
from pydantic import (BaseModel, ConfigDict, Field, SecretStr, ValidationError,
                      field_validator, model_validator)
from ..errors import error_body
from . import monitoring

if TYPE_CHECKING:
    from .engine import Engine

Mode = Literal["pre_call", "during_call", "post_call", "logging_only"]
MODES: tuple[str, ...] = ("pre_call", "during_call", "post_call", "logging_only")

log = logging.getLogger("gatehouse.guardrails")

M = TypeVar("M", bound=BaseModel)


class GuardrailBlocked(Exception):
    """Raised by a guardrail hook to refuse a call.

    The client gets ``status`` and the body ``{"error": {"message": "<message>: <detail as
    JSON>", "details": {"error": message, **detail}, "type": "guardrail_violation", "param":
    null, "code": "<status>"}}``: a message every SDK shows as it is, and the structured verdict
    for programs. Put the vendor's verdict in ``detail`` under a vendor key, e.g.
    ``{"aporia_ai_response": {...}}``.
    """

    def __init__(self, message: str, *, status: int = 400, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail or {}

    def body(self) -> dict[str, Any]:
        text = self.message
        if self.detail:
            text = f"{text}: {orjson.dumps(self.detail).decode()}"
        return error_body(text, kind="guardrail_violation", code=str(self.status),
                          details={"error": self.message, **self.detail})


class GuardrailAnswered(GuardrailBlocked):
    """Raised by a ``pre_call`` or ``during_call`` hook to answer the call itself rather than
    refuse it: the client gets a 200 whose assistant reply is ``text``, from model ``model``
    (streamed when it asked for a stream), and the upstream's reply is never used. The call is
    recorded as blocked by the guardrail, and costs nothing.
    """

    def __init__(self, text: str, *, model: str = "guardrail"):
        super().__init__(text, status=200)
        self.text = text
        self.model = model


class GuardrailError(Exception):
    """A guardrail could not reach a verdict: its vendor failed, answered nonsense or timed out.

    Raise it from a hook with a message that names what failed but holds no secret; the
    guardrail's ``on_error`` decides whether the call fails (502, or 504 for ``timeout=True``)
    or goes on.
    """

    def __init__(self, message: str, *, timeout: bool = False):
        super().__init__(message)
        self.timeout = timeout


class GuardrailParams(BaseModel):
    """Fields every guardrail accepts under ``params:`` (alias ``litellm_params:``).

    A plugin subclasses this for its own fields; unknown fields are an error at start-up so a
    misspelt option is never silently ignored. A vendor plugin names where ``api_key`` and
    ``api_base`` come from when config leaves them out, with the class variables below.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Environment variables tried, in order, for a missing ``api_key`` / ``api_base``.
    env_api_key: ClassVar[tuple[str, ...]] = ()
    env_api_base: ClassVar[tuple[str, ...]] = ()
    #: Used when neither config nor environment gives an ``api_base``.
    default_api_base: ClassVar[str | None] = None
    #: Refuse to start without these (the error names the variables that could supply them).
    requires_api_key: ClassVar[bool] = False
    requires_api_base: ClassVar[bool] = False
    #: What that error says instead, for a plugin that keeps its reference's own words.
    missing_api_key: ClassVar[str | None] = None
    missing_api_base: ClassVar[str | None] = None

    guardrail: str
    mode: list[Mode] = Field(default_factory=list)
    default_on: bool = False
    api_key: SecretStr | None = None
    api_base: str | None = None
    on_error: Literal["fail_closed", "fail_open"] = "fail_closed"
    timeout: float = Field(default=10.0, gt=0)
    #: False: run, record the verdict it would have given, never block or rewrite.
    enforce: bool = True
    #: Run as a candidate beside this enforcing guardrail, off the request path, on the same
    #: calls; never enforces. Checked against the other guardrails at start-up.
    shadow_of: str | None = None
    #: Shadow runs of this guardrail in flight at once; beyond it a run is skipped.
    shadow_concurrency: int = Field(default=16, gt=0)
    #: Seconds a verdict is cached (only for a type that declares ``cacheable``).
    cache_ttl: float | None = Field(default=None, gt=0)
    latency_budget_ms: float | None = Field(default=None, gt=0)
    #: What a run over its budget does; unset, it follows ``on_error``.
    on_budget_exceeded: Literal["fail_open", "fail_closed", "demote"] | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _vendor_from_environment(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for field, variables, default, required, missing in (
                ("api_key", cls.env_api_key, None, cls.requires_api_key, cls.missing_api_key),
                ("api_base", cls.env_api_base, cls.default_api_base, cls.requires_api_base,
                 cls.missing_api_base)):
            if data.get(field) is None:
                data[field] = next((os.environ[v] for v in variables if os.environ.get(v)),
                                   default)
            if data[field] is None and required:
                where = f" or the {' or '.join(variables)} environment variable" if variables \
                    else ""
                raise ValueError(missing or
                                 f"{field} is required: set it in the guardrail's params{where}")
        if data.get("shadow_of") is not None and data.get("enforce") is True:
            raise ValueError("enforce: a guardrail with shadow_of never enforces; drop "
                             "enforce: true or shadow_of")
        if data.get("on_budget_exceeded") is not None and data.get("latency_budget_ms") is None:
            raise ValueError("on_budget_exceeded needs latency_budget_ms")
        base = data.get("api_base")
        if base is not None and not str(base).startswith(("http://", "https://")):
            raise ValueError(f"api_base must be an http(s) URL, got {base!r}")
        return data


def parse_reply(raw: Any, reply: type[M], source: str) -> M:
    """A vendor's parsed answer read into the ``reply`` model. One that does not fit is a
    :class:`GuardrailError` naming ``source``, the field and the kind of mismatch, never the
    values (they may hold the caller's text)."""
    try:
        return reply.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise GuardrailError(f"{source} answered an unexpected reply "
                             f"({field}: {first['type']})") from None


class Models(Protocol):
    """The gateway's own models, as a guardrail that asks a model (e.g. Llama Guard) sees
    them."""

    model_names: tuple[str, ...]

    async def complete(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """A chat completion on one of ``model_names``, without guardrails. Raises
        ``UpstreamError`` when the model fails."""

    async def moderate(self, model_name: str, body: dict[str, Any], *,
                       request_id: str = "internal") -> dict[str, Any]:
        """An OpenAI moderation (``body`` holds its ``input``) on one of ``model_names``: the
        ``/moderations`` answer. Raises ``UpstreamError`` when the model fails."""


class Guardrail:
    """Base of every guardrail type.

    Subclasses implement the event-mode hooks they support as methods marked with
    ``@gatehouse.hookimpl`` (``pre_call``, ``during_call``, ``post_call``, ``post_call_stream``,
    ``logging_only``, and the callbacks ``on_success`` / ``on_failure``); a configured mode whose
    hook the class lacks is a start-up error.
    """

    #: The pydantic model of this type's ``params``.
    Params: ClassVar[type[GuardrailParams]] = GuardrailParams
    #: Modes used when config gives none (also for the ``callbacks:`` shorthand).
    default_modes: ClassVar[tuple[str, ...]] = ("pre_call",)
    #: Characters of streamed content held back from the client so a match that spans chunks
    #: is still caught by ``post_call_stream`` before any of it is sent. An instance may set
    #: its own in ``__init__`` (e.g. from the longest configured keyword).
    stream_holdback: int = 0
    #: A key permission that switches this guardrail off for a key when it is ``false``
    #: (e.g. ``"hide_secrets"``).
    permission: ClassVar[str | None] = None
    #: The vendor's name, put before the URL path in what ``post_json`` reports, so an error
    #: and its log line say which service failed (e.g. ``"OpenAI moderation"``). A type that
    #: names one has its runs paced by ``gatehouse replay --rate``.
    vendor: ClassVar[str] = ""
    #: The verdict depends only on the text the hooks see (and the params and extra_body):
    #: no per-call state, no headers. Only such a type may set ``cache_ttl``.
    cacheable: ClassVar[bool] = False

    def __init__(self, name: str, params: GuardrailParams):
        self.name = name
        self.params = params
        self._http: aiohttp.ClientSession | None = None
        # The gateway's verdict cache and background runs, set when the guardrail is built.
        self.engine: Engine | None = None
        # The hash of the params that decide a verdict, made on the first cached run.
        self.params_digest: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    async def start(self, models: Models) -> None:
        """Called once inside the event loop before the first call, with the gateway's models.
        Override to prepare; raise to refuse the start with a message for the operator."""

    async def stop(self) -> None:
        """Called once at shutdown; closes the guardrail's HTTP session (once the runs left
        off the request path, which may use it, have ended)."""
        if self.engine is not None:
            await self.engine.drain()
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """This guardrail's own pooled HTTP session, made on first use and reused."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                json_serialize=lambda obj: orjson.dumps(obj).decode(),
                # The gateway times each hook out after params.timeout; this is only a
                # backstop for calls made outside a hook, so the two never race.
                timeout=aiohttp.ClientTimeout(total=self.params.timeout * 2),
            )
        return self._http

    def report(self, *, response: Any = None,
               masked: Mapping[str, int] | None = None) -> None:
        """Called from a hook: what this run's ``guardrail_information`` entry shows.
        ``response`` replaces the vendor answer the ``post_json`` helpers keep on their own
        (credentials are removed from it); ``masked`` adds entity type -> count masked, which
        also makes the run ``guardrail_intervened``. Outside a hook it does nothing."""
        run = monitoring.CURRENT.get()
        if run is None:
            return
        if response is not None:
            run.response = monitoring.redacted(response, self.api_key())
        if masked:
            run.mask_counted(masked)

    def api_key(self) -> str | None:
        key = self.params.api_key
        return key.get_secret_value() if key is not None else None

    async def post_json(
        self, url: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Any:
        """POST JSON to a vendor and return the parsed reply.

        Failures become :class:`GuardrailError` with a message naming the guardrail, the status
        and the URL path -- never a header, so an API key cannot leak into a log or an error.
        """
        return (await self.post_json_status(url, payload, headers))[1]

    async def post_json_status(
        self, url: str, payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
        *, answers: Collection[int] = ()
    ) -> tuple[int, Any]:
        """:meth:`post_json` for a vendor that gives some verdicts as HTTP error statuses:
        ``(status, parsed reply)``, where a status in ``answers`` is a reply to read rather than
        a failure. ``payload`` may be the body already serialised (e.g. to sign it)."""
        # GuardrailFailed names the guardrail; this names what it was talking to.
        where = self.where(url)
        try:
            body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
            # Case-insensitive, so a caller's own Content-Type (e.g. one it signed) replaces
            # the default rather than going out as a second header.
            request_headers = CIMultiDict({"content-type": "application/json"})
            request_headers.update(headers or {})
            async with self.http.post(url, data=body, headers=request_headers) as resp:
                raw = await resp.read()
                status = resp.status
                if status >= 400 and status not in answers:
                    raise GuardrailError(f"{where} answered HTTP {status}")
        except TimeoutError as exc:
            raise GuardrailError(f"{where} timed out", timeout=True) from exc
        except aiohttp.ClientError as exc:
            raise GuardrailError(f"{where} unreachable ({type(exc).__name__})") from exc
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise GuardrailError(f"{where} answered with malformed JSON") from exc
        monitoring.note_answer(answer, self.api_key())
        return status, answer

    async def post_checked(self, url: str, payload: dict[str, Any], headers: dict[str, str],
                           reply: type[M]) -> tuple[Any, M]:
        """:meth:`post_json`, then the reply read into the ``reply`` model.

        Returns the reply as sent and as read. A reply that does not fit is a
        :class:`GuardrailError` naming the field and the kind of mismatch, never the values
        (they may hold the caller's text).
        """
        raw = await self.post_json(url, payload, headers)
        return raw, self.read_reply(url, raw, reply)

    def read_reply(self, url: str, raw: Any, reply: type[M]) -> M:
        """A vendor's parsed reply read into the ``reply`` model, as :meth:`post_checked` reads
        it."""
        return parse_reply(raw, reply, self.where(url))

    def where(self, url: str) -> str:
        """What a vendor call to ``url`` is called in errors: the vendor and the URL path
        (never the query, which may hold a key)."""
        return f"{self.vendor} {aiohttp.client.URL(url).path}".lstrip()
