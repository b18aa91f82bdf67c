"""Reading admin requests as LiteLLM takes them, and the models of what admin routes answer.

A body's fields have their types and defaults; fields a route does not know are ignored (as
LiteLLM does) but logged once per route and field, so a typo shows in the log without a client
being able to flood it. Mistakes are 422s in the validation shape,
``{"detail": [{"type", "loc", "msg", "input"}]}``; malformed JSON is a 422 ``json_invalid``.
Auth runs first (in a middleware), so a 401 always beats a 422.

A GET route's query string is read the same way, through a :class:`Query` model; a route's
answer is built through a :class:`Reply` model (:func:`reply`). The API docs (``ops/docs.py``)
read the same models, so what they say is what the routes do.

``null`` on a create means "not given" (the default applies); on an update (:class:`Update`)
an explicit ``null`` clears the field. Fields that cannot be null (plain lists and booleans)
refuse it with a 422 either way.
"""

from __future__ import annotations

import logging
import types
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

import orjson
from aiohttp import web
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, ValidationInfo, model_validator)

from ..access import durations
from ..access.credentials import key_name
from ..errors import ClientError, json_response
from ..proxy.schemas import check_depth, read_raw, refuse_nul

log = logging.getLogger("gatehouse.admin")

M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound="Query")

# The most rows a listing route (``limit``) answers with.
MAX_ROWS = 1000
# A count the databases can store: a signed 64-bit integer.
Limit = Annotated[int, Field(ge=0, le=2 ** 63 - 1)]


def _parsed(value: str) -> str:
    durations.parse(value)
    return value


# "30s", "10m", "2h", "7d", "2w", "1mo": a budget period or a lifetime.
Duration = Annotated[str, AfterValidator(_parsed)]

# (route, field) pairs already logged as unknown; bounded so that a client sending ever new
# names cannot grow it (or the log) without end.
_WARNED: set[tuple[str, str]] = set()
MAX_WARNED = 1000
# Fields whose value is a key: shown shortened wherever an error echoes a body.
SECRET_FIELDS = frozenset({"key", "new_key", "new_master_key"})


class Invalid(ClientError):
    """A 422 in the validation shape rather than the OpenAI error shape."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(422, errors[0]["msg"] if errors else "invalid request")
        self.body = {"detail": errors}
        try:
            orjson.dumps(self.body)
        except orjson.JSONEncodeError:
            # An input nested nearly as deep as a body may be cannot be nested in the answer.
            self.body = {"detail": [{**error, "input": None} for error in errors]}


def problem(kind: str, loc: list[Any], msg: str, value: Any = None) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg, "input": _shown(value)}


class Body(BaseModel):
    """An admin request body. Types are strict (``"5"`` is not a budget)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    #: An explicit null is written (clears the field) rather than meaning "not given".
    null_clears: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _null_is_not_given(cls, data: Any) -> Any:
        if cls.null_clears or not isinstance(data, dict):
            return data
        return {name: value for name, value in data.items()
                if value is not None or not _admits_none(cls, name)}


class Update(Body):
    """An update body: omitted fields stay as they are, an explicit null clears one."""

    null_clears = True

    def changes(self, exclude: set[str]) -> dict[str, Any]:
        """The fields the caller sent, a cleared one at its create-time default when it has
        one (a list or dict column is never null)."""
        sent = self.model_fields_set - exclude
        values = self.model_dump(include=sent)
        for name in sent:
            if values[name] is None:
                field = type(self).model_fields[name]
                if not field.is_required():
                    values[name] = field.get_default(call_default_factory=True)
        return values


def _admits_none(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    if field is None:
        return True  # unknown: ignored anyway
    annotation = field.annotation
    return annotation is Any or (get_origin(annotation) in (Union, types.UnionType)
                                 and type(None) in get_args(annotation))


async def parse_body(request: web.Request, model: type[M]) -> M:
    raw = await read_raw(request)
    if not raw.strip():
        raise Invalid([problem("missing", ["body"], "Field required")])
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid([{"type": "json_invalid", "loc": ["body", exc.pos],
                        "msg": "JSON decode error", "input": {},
                        "ctx": {"error": exc.msg}}]) from None
    check_depth(raw, body)
    if not isinstance(body, dict):
        raise Invalid([problem("model_attributes_type", ["body"],
                               "Input should be a valid dictionary or object to extract fields "
                               "from", body)])
    refuse_nul(body)
    _log_unknown(request, model, body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Invalid([problem(err["type"], ["body", *err["loc"]], err["msg"], err["input"])
                       for err in exc.errors(include_url=False)]) from None


def _log_unknown(request: web.Request, model: type[BaseModel], body: dict[str, Any]) -> None:
    known = model.model_fields.keys()
    route = request.match_info.route.resource
    where = route.canonical if route is not None else request.path
    for name in body.keys() - known:
        if (where, name) in _WARNED or len(_WARNED) >= MAX_WARNED:
            continue
        _WARNED.add((where, name))
        log.warning("%s: ignored the unknown field %r (LiteLLM ignores it too; a typo?)",
                    where, name[:100])


def _shown(value: Any) -> Any:
    """An input as an error may echo it: a key shortened to its display name."""
    if isinstance(value, dict):
        return {k: key_name(v) if k in SECRET_FIELDS and isinstance(v, str) else v
                for k, v in value.items()}
    return value


def check_query(request: web.Request) -> None:
    for name, value in request.query.items():
        refuse_nul({name: value})


class Query(BaseModel):
    """A GET route's query parameters. Every value arrives as a string, so types are lax
    (``page=2`` is a number, ``include_team_keys=true`` a boolean); an empty value is "not
    given"; parameters a route does not know are ignored, as LiteLLM does."""

    model_config = ConfigDict(extra="ignore")
    # The API docs show its fields as query parameters (ops/docs.py).
    openapi_in: ClassVar[str] = "query"

    @model_validator(mode="before")
    @classmethod
    def _empty_is_not_given(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {name: value for name, value in data.items() if value != ""}


def _day(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        # Not a ValueError: pydantic lets it through as it is, so a bad date is LiteLLM's 400
        # naming the parameter rather than a 422.
        raise ClientError(400, f"{info.field_name} must be a date, YYYY-MM-DD; got {value!r}",
                          kind="bad_request", param=info.field_name) from None


# A day, ``YYYY-MM-DD`` (UTC).
Day = Annotated[date, BeforeValidator(_day)]


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class RowsQuery(Query):
    """A route that lists rows, most recent or most spent first."""

    limit: int = Field(default=100, ge=1, le=MAX_ROWS)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        # A missing parameter's input is the whole query string: FastAPI (LiteLLM) shows null.
        raise Invalid([problem(err["type"], ["query", *err["loc"]], err["msg"],
                               None if err["type"] == "missing" else err["input"])
                       for err in exc.errors(include_url=False)]) from None


class Reply(BaseModel):
    """What an admin route answers: the fields the docs describe, and any others the stored
    rows carry (LiteLLM's records are wide; the docs name the ones clients read)."""

    model_config = ConfigDict(extra="allow")
    # The API docs show it as the route's answer (ops/docs.py).
    openapi_in: ClassVar[str] = "response"


def reply(model: type[BaseModel], value: Any) -> web.Response:
    """``value`` (a dict; a list for a ``RootModel``) checked against ``model`` and sent as
    it is: no field is added that ``value`` does not have."""
    checked = model.model_validate(value)
    return json_response(checked.model_dump(mode="json", exclude_unset=True))
