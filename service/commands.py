"""What `vellum import`, `get`, `verify`, `reprocess` and `export` do (arguments: `service.cli`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import msgspec

from service.analysis import Analyzer
from service.app import open_storage
from service.archive import Archive
from service.config import Config
from service.errors import ConfigError
from service.ids import parse_id
from service.ingest import Ingestor
from service.jobs import model
from service.jobs.export import export_bags
from service.jobs.local import expand_sources, file_chunks, import_input
from service.jobs.reprocess import document_ids, reprocess
from service.jobs.verify import verify
from service.progress import ImportProgress, summary

POLL_SECONDS = 1.0
_status_decoder = msgspec.json.Decoder(model.JobStatus)


async def run_import(
    config: Config, source: str, shard: model.Shard | None, url: str | None
) -> int:
    """Exit status: 0 when every line was stored, 1 when lines failed or the job did not
    succeed."""
    if url is not None:
        return await _import_through(url, source, shard, config.api_key)
    failed = False
    async with (
        open_storage(config) as (store, _),
        Analyzer(
            config.analysis_processes, timeout_seconds=config.analysis_timeout_seconds
        ) as analyzer,
    ):
        sources = await expand_sources(source, store, config)
        for one in sources:
            with ImportProgress() as bar:
                manifest, final = await import_input(
                    one,
                    store=store,
                    ingestor=Ingestor(Archive(store), analyzer),
                    config=config,
                    shard=shard,
                    progress=bar.follow,
                )
            if len(sources) > 1:
                print(f"{one}:")
            print(summary(manifest, final))
            failed |= final.state != "succeeded" or final.counts.failed > 0
    return 1 if failed else 0


async def run_get(config: Config, document_id: str, version: int | None, original: bool) -> int:
    parse_id(document_id)
    async with open_storage(config) as (store, _):
        archive = Archive(store)
        if original:
            record = await archive.record(document_id, 1)
            sys.stdout.buffer.write(await archive.original(record))
        else:
            stored = await archive.stored_record(document_id, version)
            sys.stdout.buffer.write(stored.data + b"\n")
    sys.stdout.flush()
    return 0


async def run_verify(config: Config) -> int:
    """Exit status 1 when anything is missing, corrupt or unreferenced."""
    async with open_storage(config) as (store, description):
        report = await verify(store)
    for finding in report.findings:
        print(f"{finding.kind}: {finding.key}: {finding.detail}")
    print(
        f"verified {report.originals} originals and {report.records} records in "
        f"{description}: {len(report.findings)} findings"
    )
    return 1 if report.findings else 0


async def run_reprocess(config: Config, ids: list[str], every: bool) -> int:
    if every == bool(ids):
        raise ConfigError("name document ids, or --all (not both)")
    async with (
        open_storage(config) as (store, _),
        Analyzer(
            config.analysis_processes, timeout_seconds=config.analysis_timeout_seconds
        ) as analyzer,
    ):
        archive = Archive(store)
        chosen = await document_ids(store) if every else [parse_id(i) for i in ids]
        report = await reprocess(archive, analyzer, chosen, concurrency=config.import_concurrency)
    for document_id in report.written:
        print(f"new version: {document_id}")
    print(f"{len(report.written)} new versions, {len(report.current)} already current")
    return 0


async def run_export(config: Config, target: Path, ids: list[str], every: bool) -> int:
    """One bag per document under `target` (layout: service/jobs/export.py)."""
    if every == bool(ids):
        raise ConfigError("name document ids, or --all (not both)")
    async with open_storage(config) as (store, _):
        archive = Archive(store)
        chosen = await document_ids(store) if every else [parse_id(i) for i in ids]
        for document_id in [] if every else chosen:
            await archive.versions(document_id)  # DocumentNotFound before any bag is made
        report = await export_bags(
            archive,
            chosen,
            target,
            concurrency=config.import_concurrency,
            on_bag=lambda document_id, outcome: print(
                f"{outcome}: {target / document_id}", flush=True
            ),
        )
    print(f"{len(report.written)} bags written, {len(report.skipped)} already there, in {target}")
    return 0


async def _import_through(
    url: str, source: str, shard: model.Shard | None, api_key: str | None
) -> int:
    """Submit the file to a running server and follow the job there."""
    if shard is not None or source.startswith("s3://"):
        raise ConfigError("--url takes a local file and no --shard")
    path = Path(source)
    base = url.rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{base}/v1/imports",
            data=file_chunks(path),
            headers={"Content-Type": "application/x-ndjson"},
        ) as response:
            if response.status != 202:
                raise ConfigError(f"the server refused the import: {await response.text()}")
            status = _status_decoder.decode(await response.read())
        manifest = model.Manifest(
            job=status.job,
            created_at=status.created_at,
            channel="http",
            input_key="",
            input_bytes=status.input_bytes,
            input_sha256="",
            input_lines=status.input_lines,
        )
        with ImportProgress() as bar:
            update = bar.follow(manifest)
            while status.state not in model.TERMINAL:
                await asyncio.sleep(POLL_SECONDS)
                async with session.get(f"{base}{status.links.self}") as response:
                    status = _status_decoder.decode(await response.read())
                update(_as_checkpoint(status))
    final = _as_checkpoint(status)
    print(summary(manifest, final))
    return 0 if final.state == "succeeded" and final.counts.failed == 0 else 1


def _as_checkpoint(status: model.JobStatus) -> model.Checkpoint:
    return model.Checkpoint(
        seq=0,
        state=status.state,
        next_line=0,
        next_offset=status.processed_bytes,
        counts=model.Counts(status.total, status.created, status.duplicates, status.failed),
        lease_owner=None,
        lease_expires=0.0,
        updated_at=status.updated_at,
        error=status.error,
    )
