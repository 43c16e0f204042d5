"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from aiohttp import web

from service.errors import ServiceUnavailable
from service.media import APPLICATION_JSON
from service.types import Health
from service.web.typedefs import LIFECYCLE, READINESS, SERVICES

_ok = msgspec.json.encode(Health(status="ok"))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP (also while draining)."""
    return web.Response(body=_ok, content_type=APPLICATION_JSON)


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: not draining, and a real call to the storage succeeds.

    That call is a HEAD of the bucket, unless the last write failed because storage was
    unavailable: then it is a write of the probe object (`PROBE_KEY`), so that ready
    means writes work again. The result is reused for `READINESS_SECONDS`
    (service.web.readiness).
    """
    if request.app[LIFECYCLE].draining:
        raise ServiceUnavailable("shutting down: not accepting new work")
    await request.app[READINESS].check(request.app[SERVICES].store)
    return web.Response(body=_ok, content_type=APPLICATION_JSON)
