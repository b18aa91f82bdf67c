"""The pages the gateway serves and the emails it sends, rendered from the templates beside
this module with every value escaped (``.txt`` templates, plain text, excepted). A page loads
nothing from outside the gateway: the machines that run gateways are often offline."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape


@functools.cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("gatehouse.ui", "templates"),
                       autoescape=select_autoescape(disabled_extensions=("txt",), default=True))


def text(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def render(template: str, **context: Any) -> web.Response:
    return web.Response(text=text(template, **context), content_type="text/html")


def wants_json(request: web.Request) -> bool:
    """A client asking for JSON rather than a page (a script, not a browser): it is answered
    in the OpenAI error shape where a browser gets the page."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept
