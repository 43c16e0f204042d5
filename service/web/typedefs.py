"""Typed keys of the objects an application holds (no globals), and its serving state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from service.archive import Archive
from service.config import Config
from service.ingest import Ingestor
from service.jobs.imports import Jobs
from service.storage.metered import MeteredStore
from service.storage.port import BulkStore


@dataclass
class Lifecycle:
    """Serving state: draining after SIGTERM (/readyz turns 503), and the requests in
    flight, which shutdown waits for."""

    draining: bool = False
    in_flight: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def request_started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()


CONFIG = web.AppKey("config", Config)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
# Always the measured store (service.storage.metered): it also knows if writes fail.
STORE = web.AppKey("store", MeteredStore)
ARCHIVE = web.AppKey("archive", Archive)
INGESTOR = web.AppKey("ingestor", Ingestor)
# The storage adapter itself, for bulk work (multipart inputs, range reads).
BULK_STORE = web.AppKey("bulk_store", BulkStore)
JOBS = web.AppKey("jobs", Jobs)
IMPORT_WAKE = web.AppKey("import_wake", asyncio.Event)
