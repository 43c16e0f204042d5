"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.errors import ServiceUnavailable
from service.types import Health
from service.web.state import LIFECYCLE, STORE

_ok = msgspec.json.encode(Health(status="ok"))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP (also while draining)."""
    return web.Response(body=_ok, content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: not draining, and a real call to the storage succeeds."""
    if request.app[LIFECYCLE].draining:
        raise ServiceUnavailable("shutting down: not accepting new work")
    await request.app[STORE].check()  # StorageUnavailable -> 503
    return web.Response(body=_ok, content_type="application/json")
