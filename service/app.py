"""Wiring: config -> storage -> services -> web application.

Each resource's whole life is one `cleanup_ctx` generator: the storage (embedded S3
child, S3 client and thread pool) is started first and so stopped last, after in-flight
requests have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import msgspec
import structlog
from aiohttp import web

from service.analysis import Analyzer
from service.archive import Archive
from service.config import Config, shared_metrics_dir
from service.errors import StorageUnavailable
from service.ingest import Ingestor
from service.jobs.imports import Jobs, Runner, worker_name
from service.jobs.worker import Worker
from service.keys import KeysFile
from service.metrics import Metrics
from service.storage.embedded import EmbeddedS3
from service.storage.metered import MeteredStore
from service.storage.port import BulkStore
from service.storage.s3 import S3ObjectStore, S3Settings
from service.web import documents, health, imports, openapi
from service.web.auth import KEYS_FILE, SCRYPT_SLOT, authenticate
from service.web.metrics import METRICS, metrics
from service.web.middlewares import load_shedding, problems, request_context, same_site_writes
from service.web.state import (
    ARCHIVE,
    BULK_STORE,
    CONFIG,
    IMPORT_WAKE,
    INGESTOR,
    JOBS,
    LIFECYCLE,
    STORE,
    Lifecycle,
)

log = structlog.get_logger("vellum")

STORAGE_DESCRIPTION = web.AppKey("storage_description", str)


def create_app(config: Config, *, store: BulkStore | None = None) -> web.Application:
    """The Vellum application. Pass `store` to use an already open storage adapter."""
    app = web.Application(
        middlewares=[request_context, authenticate, problems, same_site_writes, load_shedding],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[LIFECYCLE] = Lifecycle()
    app[METRICS] = Metrics(shared_metrics_dir())
    app[health.READINESS] = health.Readiness()
    if config.keys_file is not None:
        app[KEYS_FILE] = KeysFile(config.keys_file)
        app[SCRYPT_SLOT] = asyncio.Lock()
    if store is None:
        app.cleanup_ctx.append(_storage)
    else:
        app[STORE] = app[BULK_STORE] = MeteredStore(store, app[METRICS])
        app[STORAGE_DESCRIPTION] = f"storage: {type(store).__name__}"
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_import_worker)
    app.router.add_post("/v1/documents", documents.create_document)
    app.router.add_get("/v1/documents/{id}", documents.get_document)
    app.router.add_get("/v1/documents/{id}/original", documents.get_original)
    app.router.add_get("/v1/documents/{id}/versions", documents.get_versions)
    app.router.add_get("/v1/documents/{id}/provenance", documents.get_provenance)
    app.router.add_post("/v1/imports", imports.create_import)
    app.router.add_get("/v1/imports/{job}", imports.get_import)
    app.router.add_delete("/v1/imports/{job}", imports.cancel_import)
    app.router.add_get("/v1/imports/{job}/errors", imports.get_errors)
    app.router.add_get("/v1/imports/{job}/results", imports.get_results)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/openapi.json", openapi.openapi_json)
    app.router.add_get("/metrics", metrics)
    return app


async def _storage(app: web.Application) -> AsyncIterator[None]:
    async with open_storage(app[CONFIG]) as (store, description):
        app[STORE] = app[BULK_STORE] = MeteredStore(store, app[METRICS])
        app[STORAGE_DESCRIPTION] = description
        yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    archive = Archive(app[STORE])
    app[ARCHIVE] = archive
    async with Analyzer(
        app[CONFIG].analysis_processes, timeout_seconds=app[CONFIG].analysis_timeout_seconds
    ) as analyzer:
        app[INGESTOR] = Ingestor(archive, analyzer)
        app[JOBS] = Jobs(app[BULK_STORE])
        app[IMPORT_WAKE] = asyncio.Event()
        yield


async def _import_worker(app: web.Application) -> AsyncIterator[None]:
    """Run open import jobs in the background, unless VELLUM_IMPORT_WORKER=false."""
    config, metrics = app[CONFIG], app[METRICS]
    if not config.import_worker:
        yield
        return
    runner = Runner(
        app[JOBS],
        app[INGESTOR],
        owner=worker_name(),
        max_line_bytes=config.max_body_bytes,
        max_metadata_bytes=config.max_metadata_bytes,
        concurrency=config.import_concurrency,
        lease_seconds=config.import_lease_seconds,
        on_chunk=lambda done: metrics.import_chunk(
            created=done.created, duplicates=done.duplicates, failed=done.failed
        ),
    )
    worker = Worker(app[JOBS], runner, app[IMPORT_WAKE])
    task = asyncio.create_task(worker.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _s3_settings(config: Config, embedded: S3Settings | None = None) -> S3Settings:
    """Settings for the S3 adapter: the embedded server's endpoint and keys, or the
    configured endpoint with the AWS credential chain; tuned by the config."""
    if embedded is None:
        assert config.s3_endpoint is not None
        embedded = S3Settings(
            endpoint=config.s3_endpoint, bucket=config.s3_bucket, region=config.s3_region
        )
    return msgspec.structs.replace(
        embedded,
        bucket=config.s3_bucket,
        prefix=config.s3_prefix,
        max_connections=config.s3_max_connections,
        timeout_seconds=config.s3_timeout_seconds,
    )


def s3_description(config: Config) -> str:
    """How the configured (not embedded) storage is named at start-up."""
    return f"S3 endpoint {config.s3_endpoint}, bucket {config.s3_bucket}"


@contextlib.asynccontextmanager
async def open_storage(config: Config) -> AsyncIterator[tuple[S3ObjectStore, str]]:
    """The configured storage, ready for use: an S3 endpoint, or the embedded server."""
    if not config.embedded_storage:
        store = S3ObjectStore(_s3_settings(config))
        try:
            try:
                await store.ensure_bucket()
            except StorageUnavailable as exc:  # keep serving; /readyz tells the truth
                log.warning("storage_unavailable_at_start", detail=exc.detail)
            yield store, s3_description(config)
        finally:
            store.close()
        return

    embedded = EmbeddedS3(config.data_dir, bucket=config.s3_bucket, weed=config.weed_binary)
    settings = _s3_settings(config, embedded.start())
    try:
        store = S3ObjectStore(settings)
        try:
            await embedded.wait_ready(store)
            async with _supervised(embedded, store):
                yield (
                    store,
                    (
                        f"embedded SeaweedFS S3 at {settings.endpoint}, "
                        f"data in {config.data_dir.resolve()}"
                    ),
                )
        finally:
            store.close()
    finally:
        await asyncio.to_thread(embedded.stop)


@contextlib.asynccontextmanager
async def _supervised(embedded: EmbeddedS3, store: S3ObjectStore) -> AsyncIterator[None]:
    """Restart the embedded server if it dies while Vellum serves."""
    supervisor = asyncio.create_task(embedded.supervise(store))
    try:
        yield
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
