"""`vellum import` without a server: the same job code, run in this process.

The input is archived first, then imported as a job, so a run that dies is resumed by
running the same command again: a local file is stored content-addressed
(`imports/inputs/sha256/<hex>`, uploaded once), and the job id is derived from the input
and the shard, so the same command finds the same job and continues it from its last
checkpoint. An `s3://bucket/key` input is read where it is (it must be in Vellum's
bucket); it is hashed once when its job is made (unless Vellum kept its SHA-256), and
its job id derives from its key, ETag and digest, so an object replaced under the same
key is a new job, never the old one resumed at its offset. `s3://bucket/prefix/` (or any
`s3://` name that is not an object) imports every object under that prefix, in key order,
each as a job of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from service.config import Config
from service.errors import ConfigError, ObjectNotFound
from service.jobs import model
from service.jobs.imports import Progress, Runner
from service.jobs.inputs import input_digest
from service.jobs.lines import LineCounter
from service.media import APPLICATION_NDJSON
from service.storage.port import BulkStore, ObjectInfo, key_prefix
from service.timestamps import now_text

READ_BYTES = 1024 * 1024
WAIT_SECONDS = 2.0


async def expand_sources(source: str, store: BulkStore, config: Config) -> list[str]:
    """A file, an S3 object, or every S3 object under a prefix: the inputs to import."""
    if not source.startswith("s3://"):
        return [source]
    bucket, relative = _in_archive(source, config)
    if not source.endswith("/"):
        try:
            await store.size(relative)
            return [source]
        except ObjectNotFound:
            relative += "/"
    keys = await store.list_keys(relative)
    if not keys:
        raise ConfigError(f"{source} is neither an object nor a prefix with objects under it")
    return [f"s3://{bucket}/{key_prefix(config.s3_prefix)}{key}" for key in keys]


async def import_input(
    source: str,
    *,
    runner: Runner,
    config: Config,
    shard: model.Shard | None,
    progress: Callable[[model.Manifest], Progress],
) -> tuple[model.Manifest, model.Checkpoint]:
    """Archive the input if needed, create or find its job, and run it to its end with
    `runner`, reporting to the `progress` made for the job's manifest."""
    jobs = runner.jobs
    if source.startswith("s3://"):
        manifest = await _s3_manifest(source, jobs.store, config, shard)
    else:
        manifest = await _file_manifest(Path(source), jobs.store, config, shard)
    latest = await jobs.create(manifest)
    manifest = await jobs.manifest(manifest.job)  # the stored one, if the job existed
    runner = runner.reporting_to(progress(manifest))
    while latest.state not in model.TERMINAL:
        final = await runner.run(manifest.job)
        if final is not None:
            return manifest, final
        await asyncio.sleep(WAIT_SECONDS)  # another lease owner holds it: follow it
        latest = await jobs.latest(manifest.job)
        runner.progress(latest)
    return manifest, latest


async def _file_manifest(
    path: Path, store: BulkStore, config: Config, shard: model.Shard | None
) -> model.Manifest:
    digest, size, lines = await asyncio.to_thread(_scan, path)
    key = model.shared_input_key(digest)
    try:
        stored = await store.size(key)
    except ObjectNotFound:
        stored = -1
    if stored != size:
        uploaded = await store.upload(
            key,
            _as_scanned(path, digest),
            content_type=APPLICATION_NDJSON,
            limit=config.max_import_bytes,
        )
        digest = uploaded.sha256.hex()  # the bytes uploaded: those scanned (_as_scanned)
    return _manifest(key, await store.head(key), digest, lines, shard)


async def _as_scanned(path: Path, digest: str) -> AsyncIterator[bytes]:
    """The file's bytes for its upload, which fails (and so is aborted, never completed
    under a key that is not its digest) if they are not the bytes scanned: a file
    written to meanwhile."""
    uploading = hashlib.sha256()
    async for block in file_chunks(path):
        uploading.update(block)
        yield block
    if uploading.hexdigest() != digest:
        raise ConfigError(f"{path} changed while it was imported; run the import again")


async def _s3_manifest(
    source: str, store: BulkStore, config: Config, shard: model.Shard | None
) -> model.Manifest:
    _, relative = _in_archive(source, config)
    try:
        found = await store.head(relative)
    except ObjectNotFound:
        raise ConfigError(f"{source} does not exist") from None
    # The digest Vellum kept with the object, else one read of it, pinned to its ETag.
    digest = found.sha256 or await input_digest(store, relative, found.size, if_match=found.etag)
    identity = hashlib.sha256(f"{source}\n{found.etag}\n{digest}".encode()).hexdigest()
    return _manifest(relative, found, digest, None, shard, identity=identity)


def _manifest(
    key: str,
    found: ObjectInfo,
    digest: str,
    lines: int | None,
    shard: model.Shard | None,
    *,
    identity: str | None = None,
) -> model.Manifest:
    """A CLI import's manifest: its job id derives from the input's identity (its
    digest, unless given) and shard; its reads are pinned to the ETag `found`."""
    return model.Manifest(
        job=model.job_id_for(identity or digest, shard),
        created_at=now_text(),
        channel="cli",
        input_key=key,
        input_bytes=found.size,
        input_sha256=digest,
        input_lines=lines,
        shard=shard,
        input_etag=found.etag,
    )


def _in_archive(source: str, config: Config) -> tuple[str, str]:
    """The bucket of an s3:// name and its key relative to the archive's prefix."""
    bucket, _, key = source.removeprefix("s3://").partition("/")
    prefix = key_prefix(config.s3_prefix)
    if bucket != config.s3_bucket or not key.startswith(prefix):
        raise ConfigError(
            f"{source} is outside the archive: s3:// inputs must be in bucket "
            f"{config.s3_bucket!r} under the prefix {prefix!r}"
        )
    return bucket, key[len(prefix) :]


def _scan(path: Path) -> tuple[str, int, int]:
    digest = hashlib.sha256()
    lines = LineCounter()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)
            size += len(block)
            lines.feed(block)
    return digest.hexdigest(), size, lines.count


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    """A file's bytes in blocks, read off the event loop."""
    with path.open("rb") as handle:
        while block := await asyncio.to_thread(handle.read, READ_BYTES):
            yield block
