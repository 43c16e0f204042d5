"""The import poller inside `vellum serve`: finds open jobs and runs them, one at a time.

It looks for work every `POLL_SECONDS`, or at once when this server accepted a new job.
Jobs it has seen end are remembered and not looked at again. Several servers may run
pollers on one bucket: leases (see `service.jobs.model`) keep each job with one lease
owner at a time. Each job is guarded on its own: a job that fails in any way is logged
and passed over until the next sweep (or for good, when it cannot even be read), and the
sweep goes on to the other jobs.
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
            try:
                await self._one(job)
            except StorageError as exc:  # storage away: this job waits for the next sweep
                log.warning("import_job_storage_error", job=job, detail=exc.detail)
            except Exception as exc:  # unreadable (a corrupt checkpoint): it fails
                log.exception("import_job_unreadable", job=job)
                self._ended.add(job)
                with contextlib.suppress(Exception):
                    await self.jobs.fail_unreadable(
                        job, f"the job's state could not be read: {type(exc).__name__}"
                    )

    async def _one(self, job: str) -> None:
        latest = await self.jobs.recover(job)
        if latest is None or latest.state in model.TERMINAL:  # None: no manifest, no job
            self._ended.add(job)
            return
        final = await self.runner.run(job)
        if final is not None and final.state in model.TERMINAL:
            self._ended.add(job)
