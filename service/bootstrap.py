"""The composition root: config -> storage -> services, for the web app and the CLI alike.

    async with open_services(config) as services:
        await services.ingestor.ingest(...)

`open_services` opens the configured storage (or takes a given one, as tests do), wraps it
in the measured store, and builds on it the archive, the analysis processes, the index
writer and the lookups (service.finding), the ingestor, the import jobs and the import
runner, yielding them as one frozen `Services`. Leaving the
block stops them in reverse order: the analysis processes, then the storage (the embedded
S3 server last). `service.app` holds one `Services` for the life of the web app;
`service.commands` opens one per command; `serve --workers N` opens the storage alone,
once, in the supervisor (`open_storage`), and each server process its own services on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import structlog

from service.analysis import Analyzer
from service.archive import Archive
from service.config import Config, shared_metrics_dir
from service.errors import StorageUnavailable
from service.finding.entries import IndexWriter
from service.finding.lookups import Finder
from service.ingest import Ingestor
from service.jobs.imports import Jobs, Runner, lease_owner_name
from service.metrics import Metrics
from service.storage.embedded import EmbeddedS3
from service.storage.metered import MeteredStore
from service.storage.port import BulkStore
from service.storage.s3 import S3ObjectStore, S3Settings

log = structlog.get_logger("vellum")


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the app and the commands work with, built once from one Config."""

    config: Config
    metrics: Metrics
    store: MeteredStore  # measured (service.storage.metered); knows if writes fail
    storage_description: str  # how the storage is named at start-up
    archive: Archive
    analyzer: Analyzer
    ingestor: Ingestor
    indexes: IndexWriter  # writes a record's index entries, then the record
    finder: Finder  # the lookups of SPEC §9
    jobs: Jobs
    runner: Runner  # runs import jobs under this process's lease owner name


@contextlib.asynccontextmanager
async def open_services(
    config: Config,
    *,
    store: BulkStore | None = None,
    metrics: Metrics | None = None,
    analysis_processes: int | None = None,
) -> AsyncIterator[Services]:
    """The services over `store`, or over the configured storage, opened here.

    `analysis_processes` overrides the config's, for commands that never analyse (0)."""
    metrics = metrics or Metrics(shared_metrics_dir())
    processes = config.analysis_processes if analysis_processes is None else analysis_processes
    async with contextlib.AsyncExitStack() as stack:
        adapter: BulkStore
        if store is None:
            adapter, description = await stack.enter_async_context(open_storage(config))
        else:
            adapter, description = store, f"storage: {type(store).__name__}"
        measured = MeteredStore(adapter, metrics)
        archive = Archive(measured)
        analyzer = await stack.enter_async_context(
            Analyzer(processes, timeout_seconds=config.analysis_timeout_seconds)
        )
        settle = config.changes_settle_seconds
        indexes = IndexWriter(archive, settle_seconds=settle)
        ingestor = Ingestor(archive, analyzer, indexes=indexes)
        jobs = Jobs(measured)
        yield Services(
            config=config,
            metrics=metrics,
            store=measured,
            storage_description=description,
            archive=archive,
            analyzer=analyzer,
            ingestor=ingestor,
            indexes=indexes,
            finder=Finder(archive, settle_seconds=settle, on_lookup=metrics.lookup_answered),
            jobs=jobs,
            runner=Runner(
                jobs,
                ingestor,
                owner=lease_owner_name(),
                max_line_bytes=config.max_body_bytes,
                max_metadata_bytes=config.max_metadata_bytes,
                concurrency=config.import_concurrency,
                lease_seconds=config.import_lease_seconds,
                chunk_seconds=config.import_chunk_seconds,
                on_chunk=lambda done: metrics.import_chunk(
                    created=done.created, duplicates=done.duplicates, failed=done.failed
                ),
            ),
        )


def s3_settings(config: Config, embedded: S3Settings | None = None) -> S3Settings:
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
    """The configured storage, ready for use: an S3 endpoint, or the embedded server
    (started here, supervised while in use, stopped on leaving); and its description."""
    if not config.embedded_storage:
        store = S3ObjectStore(s3_settings(config))
        try:
            try:
                await store.ensure_bucket()
            except StorageUnavailable as exc:  # keep serving; /readyz tells the truth
                log.warning("storage_unavailable_at_start", detail=exc.detail)
            yield store, s3_description(config)
        finally:
            await store.close()
        return

    embedded = EmbeddedS3(config.data_dir, bucket=config.s3_bucket, weed=config.weed_binary)
    settings = s3_settings(config, embedded.start())
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
            await store.close()
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
