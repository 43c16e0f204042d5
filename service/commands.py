"""What each `vellum` command does, one function per command (arguments: `service.cli`).

Every command that touches the archive opens the composition root (service.bootstrap)
for its run: the same storage, archive, ingestor and import runner as the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
import msgspec
import structlog

from service import __version__
from service.app import create_app
from service.bootstrap import open_services
from service.config import Config
from service.errors import ConfigError
from service.finding.maintenance import reindex
from service.finding.model import Match
from service.ids import parse_id
from service.jobs import model
from service.jobs.export import export_bags
from service.jobs.imports import Progress
from service.jobs.local import expand_sources, file_chunks, import_input
from service.jobs.reprocess import document_ids, reprocess
from service.jobs.verify import verify
from service.keys import KeyEntry, Scope, create_key, load_keys, revoke_key
from service.media import APPLICATION_NDJSON
from service.progress import CountProgress, ImportProgress, summary
from service.web.server import serve
from service.web.typedefs import KEYS_FILE, SERVICES
from service.web.workers import run_workers

log = structlog.get_logger("vellum")

POLL_SECONDS = 1.0
FEED_PAGE = 1000


class Lookup(msgspec.Struct, frozen=True, kw_only=True):
    """What `vellum find` looks up: a URL (with its match) or an external id, in a time."""

    url: str | None = None
    match: Match = "exact"
    external_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_status_decoder = msgspec.json.Decoder(model.JobStatus)


def run_serve(config: Config) -> int:
    """`vellum serve`: one server process, or `config.workers` worker processes on one port."""
    check_bind(config)
    if config.workers > 1:
        # Read here too, so a bad keys file stops start-up before any worker starts.
        keys = len(load_keys(config.keys_file)) if config.keys_file is not None else None

        def announce_workers(url: str, storage: str) -> None:
            _announce(config, url, storage, keys)

        return asyncio.run(run_workers(config, on_ready=announce_workers))
    app = create_app(config)
    keys = len(app[KEYS_FILE].keyring()) if KEYS_FILE in app else None

    def announce(url: str) -> None:
        _announce(config, url, app[SERVICES].storage_description, keys)

    asyncio.run(serve(app, config, on_ready=announce))
    return 0


def check_bind(config: Config) -> None:
    """Without API keys only loopback may be bound, unless explicitly allowed."""
    public = not _is_loopback(config.host)
    if public and config.keys_file is None and not config.allow_public_without_keys:
        raise ConfigError(
            f"refusing to bind {config.host}: no API keys are configured, so only a "
            "loopback address is allowed. Set VELLUM_KEYS_FILE (see `vellum keys "
            "create`), or pass --allow-public-without-keys (or set "
            "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS=1) to serve it unauthenticated anyway."
        )


def _announce(config: Config, url: str, storage: str, keys: int | None) -> None:
    workers = f" with {config.workers} worker processes" if config.workers > 1 else ""
    print(f"Vellum {__version__} listening on {url}{workers}", flush=True)
    print(f"Storage: {storage}", flush=True)
    if keys is not None:
        print(f"Auth: on, {keys} API keys loaded from {config.keys_file}.", flush=True)
    elif _is_loopback(config.host):
        print("Auth: off. No API keys configured: serving on loopback only.", flush=True)
    else:
        print("Auth: off. No API keys configured: serving UNAUTHENTICATED.", flush=True)
    log.info("listening", url=url, storage=storage, api_keys=keys, workers=config.workers)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_import(
    config: Config, source: str, shard: model.Shard | None, url: str | None
) -> int:
    """Exit status: 0 when every line was stored, 1 when lines failed or the job did not
    succeed."""
    if url is not None:
        return await _import_through(url, source, shard, config.api_key)
    failed = False
    async with open_services(config) as services:
        sources = await expand_sources(source, services.store, config)
        for one in sources:
            with ImportProgress() as bar:
                manifest, final = await import_input(
                    one,
                    runner=services.runner,
                    config=config,
                    shard=shard,
                    progress=_following(bar),
                )
            if len(sources) > 1:
                print(f"{one}:")
            print(summary(manifest.job, final.state, final.counts, final.error))
            failed |= final.state != "succeeded" or final.counts.failed > 0
    return 1 if failed else 0


async def run_get(config: Config, document_id: str, version: int | None, original: bool) -> int:
    parse_id(document_id)
    async with open_services(config, analysis_processes=0) as services:
        archive = services.archive
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
    async with open_services(config, analysis_processes=0) as services:
        with CountProgress("verify", "objects") as bar:
            report = await verify(
                services.store, progress=bar.count, settle_seconds=config.changes_settle_seconds
            )
    for finding in report.findings:
        print(f"{finding.kind}: {finding.key}: {finding.detail}")
    print(
        f"verified {report.originals} originals and {report.records} records in "
        f"{services.storage_description}: {len(report.findings)} findings"
    )
    return 1 if report.findings else 0


async def run_reprocess(config: Config, ids: list[str], every: bool) -> int:
    if every == bool(ids):
        raise ConfigError("name document ids, or --all (not both)")
    async with open_services(config) as services:
        named = [parse_id(i) for i in ids]
        with CountProgress("reprocess", "documents") as bar:
            bar.start(None if every else len(named))

            def on_document(document_id: str, outcome: str) -> None:
                if outcome == "written":
                    print(f"new version: {document_id}", flush=True)

            report = await reprocess(
                services.archive,
                services.analyzer,
                document_ids(services.store) if every else named,
                concurrency=config.import_concurrency,
                indexes=services.indexes,
                progress=bar.advance,
                on_document=on_document,
            )
    for failure in report.failed:
        print(f"failed: {failure.id}: {failure.problem}")
    print(
        f"{report.written} new versions, {report.current} already current, "
        f"{len(report.failed)} failed"
    )
    return 1 if report.failed else 0


async def run_reindex(config: Config) -> int:
    """Exit status 1 when a record could not be read (`vellum verify` says why)."""
    async with open_services(config, analysis_processes=0) as services:
        with CountProgress("reindex", "records") as bar:
            bar.start(None)  # the versions are counted as the listing is read
            report = await reindex(
                services.indexes, concurrency=config.import_concurrency, progress=bar.advance
            )
    for key in report.unreadable:
        print(f"unreadable: {key}")
    print(
        f"reindexed {report.records} record versions: {report.created} index entries "
        f"written, {report.heads} heads rewritten, {report.removed} index entries of the old "
        f"layouts removed, {len(report.unreadable)} records unreadable"
    )
    return 1 if report.unreadable else 0


async def run_find(config: Config, lookup: Lookup) -> int:
    """Every capture found, one JSON object per line, following the pages."""
    async with open_services(config, analysis_processes=0) as services:
        finder, cursor = services.finder, None
        while True:
            if lookup.external_id is not None:
                page = await finder.by_external_id(
                    lookup.external_id, since=lookup.since, until=lookup.until, cursor=cursor
                )
            else:
                assert lookup.url is not None
                page = await finder.by_url(
                    lookup.url, lookup.match, since=lookup.since, until=lookup.until, cursor=cursor
                )
            _print_lines(page.items)
            if page.next is None:
                return 0
            cursor = page.next


async def run_changes(config: Config, after: str | None, follow: bool) -> int:
    """The feed from `after` (the start when None), one JSON object per line; then the
    cursor to go on from, on standard error. `follow`: poll for more until interrupted."""
    async with open_services(config, analysis_processes=0) as services:
        while True:
            page = await services.finder.changes(after, FEED_PAGE)
            _print_lines(page.items)
            after = page.next
            if not page.items:
                if not follow:
                    print(f"next: {after}", file=sys.stderr)
                    return 0
                await asyncio.sleep(POLL_SECONDS)


def _print_lines(items: Sequence[msgspec.Struct]) -> None:
    for item in items:
        sys.stdout.buffer.write(msgspec.json.encode(item) + b"\n")
    sys.stdout.flush()


async def run_export(config: Config, target: Path, ids: list[str], every: bool) -> int:
    """One bag per document under `target` (layout: service/jobs/export.py)."""
    if every == bool(ids):
        raise ConfigError("name document ids, or --all (not both)")
    async with open_services(config, analysis_processes=0) as services:
        archive = services.archive
        named = [parse_id(i) for i in ids]
        for document_id in named:
            await archive.versions(document_id)  # DocumentNotFound before any bag is made
        with CountProgress("export", "documents") as bar:
            bar.start(None if every else len(named))

            def on_bag(document_id: str, outcome: str) -> None:
                print(f"{outcome}: {target / document_id}", flush=True)
                bar.advance(bar.done + 1)

            report = await export_bags(
                archive,
                document_ids(services.store) if every else named,
                target,
                concurrency=config.import_concurrency,
                on_bag=on_bag,
            )
    for failure in report.failed:
        print(f"failed: {failure.id}: {failure.problem}")
    print(
        f"{report.written} bags written, {report.skipped} already there, "
        f"{len(report.failed)} failed, in {target}"
    )
    return 1 if report.failed else 0


def _following(bar: ImportProgress) -> Callable[[model.Manifest], Progress]:
    """What `import_input` reports to: a bar for the job, then each checkpoint on it."""

    def follow(manifest: model.Manifest) -> Progress:
        bar.follow(manifest.job, manifest.input_bytes, manifest.shard)
        return lambda checkpoint: bar.update(checkpoint.next_offset, checkpoint.counts)

    return follow


def run_keys_create(config: Config, scopes: list[Scope]) -> int:
    """The key alone on stdout (once; the file keeps only a hash of it)."""
    path = _keys_file(config)
    key, entry = create_key(path, scopes)
    print(key, flush=True)
    _tell(entry, f"added to {path}; it is shown only this once.")
    return 0


def run_keys_list(config: Config) -> int:
    for entry in load_keys(_keys_file(config)).entries.values():
        print(f"{entry.id}  {entry.created_at}  {','.join(entry.scopes)}")
    return 0


def run_keys_revoke(config: Config, key_id: str) -> int:
    path = _keys_file(config)
    entry = revoke_key(path, key_id)
    _tell(entry, f"removed from {path}; servers using that file refuse it within a second.")
    return 0


def _tell(entry: KeyEntry, what: str) -> None:
    """What a keys command did, on standard error (standard output is for the key)."""
    print(f"API key {entry.id} ({', '.join(entry.scopes)}) {what}", file=sys.stderr)


def _keys_file(config: Config) -> Path:
    if config.keys_file is None:
        raise ConfigError("name the keys file: --keys-file PATH or VELLUM_KEYS_FILE")
    return config.keys_file


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
            headers={"Content-Type": APPLICATION_NDJSON},
        ) as response:
            if response.status != 202:
                raise ConfigError(f"the server refused the import: {await response.text()}")
            status = _status_decoder.decode(await response.read())
        with ImportProgress() as bar:
            bar.follow(status.job, status.input_bytes, status.shard)
            while status.state not in model.TERMINAL:
                await asyncio.sleep(POLL_SECONDS)
                async with session.get(f"{base}{status.links.self}") as response:
                    status = _status_decoder.decode(await response.read())
                bar.update(status.processed_bytes, status.counts)
    print(summary(status.job, status.state, status.counts, status.error))
    return 0 if status.state == "succeeded" and status.failed == 0 else 1
