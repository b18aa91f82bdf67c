"""Reading admin requests strictly: a JSON body into its model (no unknown fields, no loose
types), and query parameters with their bounds; every mistake is a 400 naming the field."""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import format_path
from ..errors import ClientError
from ..proxy.schemas import read_json, refuse_nul

M = TypeVar("M", bound=BaseModel)

# A count the databases can store: a signed 64-bit integer.
Limit = Annotated[int, Field(ge=0, le=2 ** 63 - 1)]


class Body(BaseModel):
    """An admin request body: strict types (``"5"`` is not a budget) and no unknown fields, so
    a misspelt or unsupported field is refused instead of silently doing nothing."""

    model_config = ConfigDict(extra="forbid", strict=True)


async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ClientError(400, "Request body must be a JSON object")
    refuse_nul(body)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = format_path(err["loc"])
        message = {
            "missing": f"Missing required parameter: '{where}'",
            "extra_forbidden": f"Unknown parameter: '{where}'",
        }.get(err["type"], f"Invalid value for '{where}': {err['msg']}")
        raise ClientError(400, message, param=str(err["loc"][0]) if err["loc"] else None
                          ) from None


def check_query(request: web.Request) -> None:
    for name, value in request.query.items():
        refuse_nul({name: value})


def query_str(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise ClientError(400, f"Missing required query parameter: '{name}'", param=name)
    return value


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ClientError(400, f"Invalid value for '{name}': expected a whole number from "
                               f"{low} to {high}, got {raw!r}", param=name)
    return value


