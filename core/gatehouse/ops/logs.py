"""Log set-up: every line names the request it was written for, as text or (``json_logs``) as
one JSON object; and the access log's line per request.

The request id travels in a context variable set by the app's request-id middleware, so a line
written anywhere while a request is served -- a guardrail failing, the upstream erring -- names
it without being handed it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"
# What an access log line carries besides its message; JSON lines carry each as a field.
ACCESS_FIELDS = ("method", "route", "status", "duration_ms", "model", "key_alias")

access_log = logging.getLogger("gatehouse.access")


def json_logs_wanted(configured: bool) -> bool:
    """``json_logs: true`` in the config, or LiteLLM's ``JSON_LOGS=True``."""
    return configured or os.environ.get("JSON_LOGS", "").lower() == "true"


def setup(level: str, *, json_lines: bool) -> None:
    """Send every logger's lines to stderr, as text or as JSON objects, each naming its
    request."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        record.request_tag = f" (request {record.request_id})" if record.request_id else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": self.formatTime(record), "level": record.levelname,
            "logger": record.name, "message": record.getMessage(),
        }
        if record.request_id:  # type: ignore[attr-defined]
            line["request_id"] = record.request_id  # type: ignore[attr-defined]
        for name in ACCESS_FIELDS:
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def log_access(request_id: str | None, method: str, route: str, status: int, began: float,
               model: str | None, key_alias: str | None) -> None:
    """One line per request: never the key itself, nor anything of the body but the model."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round((time.perf_counter() - began) * 1000, 3)
    access_log.info("%s %s %d %.1fms model=%s key=%s", method, route, status, duration_ms,
                    model or "-", key_alias or "-",
                    extra={"request_id": request_id, "method": method, "route": route, "status": status,
                           "duration_ms": duration_ms, "model": model,
                           "key_alias": key_alias})
