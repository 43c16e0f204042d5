"""Liveness and readiness."""

from __future__ import annotations

import hashlib
import uuid

import msgspec
from aiohttp import web

from service.errors import ServiceUnavailable
from service.media import APPLICATION_JSON, TEXT_PLAIN
from service.types import Health
from service.web.typedefs import LIFECYCLE, SERVICES

_ok = msgspec.json.encode(Health(status="ok"))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving HTTP (also while draining)."""
    return web.Response(body=_ok, content_type=APPLICATION_JSON)


READINESS_PREFIX = "_vellum/readiness/"
_PROBE = b"ok"
_PROBE_SHA256 = hashlib.sha256(_PROBE).digest()


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: not draining, and a real call to the storage succeeds.

    That call is a HEAD of the bucket, unless the last write failed because storage was
    unavailable: then it is a write of a small probe object (`READINESS_PREFIX`, a new key
    each time, as nothing is ever overwritten), so that ready means writes work again.
    """
    if request.app[LIFECYCLE].draining:
        raise ServiceUnavailable("shutting down: not accepting new work")
    store = request.app[SERVICES].store
    if store.writes_failing:
        await store.put_if_absent(  # StorageUnavailable -> 503; success clears the flag
            f"{READINESS_PREFIX}{uuid.uuid4().hex}",
            _PROBE,
            sha256=_PROBE_SHA256,
            content_type=TEXT_PLAIN,
        )
    else:
        await store.check()  # StorageUnavailable -> 503
    return web.Response(body=_ok, content_type=APPLICATION_JSON)
