"""Typed keys of the state kept on the aiohttp application."""

from aiohttp import web

from .gateway import Gateway

GATEWAY = web.AppKey("gateway", Gateway)
