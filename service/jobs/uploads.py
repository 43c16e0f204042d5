"""The stale-upload sweep: multipart uploads of import inputs that nobody will finish.

An import's upload is aborted by the adapter whatever ends it early, but a process killed
mid-body (or an S3 that refused the abort) leaves its parts in the bucket, unseen by any
listing of objects, for ever. No upload may take longer than
VELLUM_IMPORT_UPLOAD_MAX_SECONDS (the body is cut off then), so one under `imports/`
open for longer than that, plus `MARGIN_SECONDS` for its last part and its completion, is
abandoned: the sweep aborts it. Each server sweeps at start-up and every `SWEEP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from service.errors import StorageError
from service.jobs import model
from service.storage.port import BulkStore

log = structlog.get_logger("vellum.imports")

SWEEP_SECONDS = 3600.0
MARGIN_SECONDS = 600.0


async def abort_stale_uploads(store: BulkStore, *, older_than_seconds: float) -> int:
    """Abort every open multipart upload under imports/ begun more than
    `older_than_seconds` ago; the number aborted."""
    now = time.time()
    aborted = 0
    for upload in await store.open_uploads(model.PREFIX):
        if now - upload.initiated >= older_than_seconds:
            await store.abort_upload(upload.key, upload.upload_id)
            aborted += 1
    if aborted:
        log.info("stale_uploads_aborted", count=aborted)
    return aborted


async def sweep_stale_uploads(store: BulkStore, *, upload_max_seconds: float) -> None:
    """Sweep now and every SWEEP_SECONDS until cancelled; a failure waits for the next."""
    while True:
        try:
            await abort_stale_uploads(store, older_than_seconds=upload_max_seconds + MARGIN_SECONDS)
        except StorageError as exc:
            log.warning("stale_upload_sweep_failed", detail=exc.detail)
        await asyncio.sleep(SWEEP_SECONDS)
