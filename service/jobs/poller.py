"""The import poller inside `vellum serve`: finds open jobs and runs them, one at a time.

It looks for work every `POLL_SECONDS`, or at once when this server accepted a new job.
Jobs it has seen end are remembered and not looked at again. Several servers may run
pollers on one bucket: leases (see `service.jobs.model`) keep each job with one lease
owner at a time.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from service.errors import StorageError
from service.jobs import model
from service.jobs.imports import Jobs, Runner

log = structlog.get_logger("vellum.imports")

POLL_SECONDS = 5.0


class ImportPoller:
    def __init__(self, jobs: Jobs, runner: Runner, wake: asyncio.Event) -> None:
        self.jobs = jobs
        self.runner = runner
        self.wake = wake
        self._ended: set[str] = set()

    async def run(self) -> None:
        while True:
            try:
                await self._sweep()
            except StorageError as exc:  # storage away: try again at the next sweep
                log.warning("import_poller_storage_error", detail=exc.detail)
            except Exception:  # a bug must not end the poller: log it, try again later
                log.exception("import_poller_error")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self.wake.wait()

    async def _sweep(self) -> None:
        for job in await self.jobs.job_ids():
            if job in self._ended:
                continue
            latest = await self.jobs.latest(job)
            if latest.state in model.TERMINAL:
                self._ended.add(job)
                continue
            final = await self.runner.run(job)
            if final is not None and final.state in model.TERMINAL:
                self._ended.add(job)
