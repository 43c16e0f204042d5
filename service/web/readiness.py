"""Readiness of the storage, checked at most once a second however many probes arrive."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable

from service.errors import ObjectNotFound, VellumError
from service.media import TEXT_PLAIN
from service.storage.metered import MeteredStore

READINESS_PREFIX = "_vellum/readiness/"
PROBE_KEY = f"{READINESS_PREFIX}probe"
READINESS_SECONDS = 1.0  # a readiness result is reused this long
_PROBE = b"ok"
_PROBE_SHA256 = hashlib.sha256(_PROBE).digest()


class Readiness:
    """The storage half of readiness, checked at most once per `READINESS_SECONDS`
    however many probes arrive (one check in flight, the others wait for its result),
    so a probe flood against a slow S3 cannot take the connections ingest needs. A
    write failing (or working again) since the last check makes it stale at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._checked_at = -math.inf
        self._error: VellumError | None = None
        self._checking: asyncio.Task[None] | None = None
        self._writes_failing = False  # as the store said when last checked

    async def check(self, store: MeteredStore) -> None:
        stale = self.clock() - self._checked_at >= READINESS_SECONDS
        if stale or store.writes_failing != self._writes_failing:  # a write failed since
            if self._checking is None:
                self._checking = asyncio.ensure_future(self._check(store))
            await asyncio.shield(self._checking)
        if self._error is not None:
            raise type(self._error)(self._error.detail, **self._error.extensions)

    async def _check(self, store: MeteredStore) -> None:
        self._writes_failing = store.writes_failing
        try:
            if store.writes_failing:
                await _write_probe(store)
            else:
                await store.check()
            self._error = None
        except VellumError as exc:
            self._error = exc
        finally:
            self._checked_at = self.clock()
            self._checking = None


async def _write_probe(store: MeteredStore) -> None:
    """A real write, always to the one probe key: created once, then replaced
    (conditional on its ETag), so probes leave no objects behind."""
    try:
        found = await store.head(PROBE_KEY)
    except ObjectNotFound:
        await store.put_if_absent(PROBE_KEY, _PROBE, sha256=_PROBE_SHA256, content_type=TEXT_PLAIN)
        return
    await store.replace(
        PROBE_KEY, _PROBE, sha256=_PROBE_SHA256, content_type=TEXT_PLAIN, if_match=found.etag
    )
