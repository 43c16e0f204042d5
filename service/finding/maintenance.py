"""Keeping the indexes true to the records: `vellum reindex` and `vellum verify`'s part.

`reindex` writes every entry of every record version (the same `entry_keys` as the write
protocol, each a conditional create), so a run after any other run, or over an archive
indexed already, creates only what is missing. A record written before the change feed
had `began_at` gets its feed entry at its `received_at`. It also moves each document's
head (`records/<id>/latest.json`, service.archive) to its newest version where it is
missing or behind. It reads the versions' keys from the listing a page at a time, with
`concurrency` takers (no listing of every key, no task per version), and skips other keys
under `records/` (only `<9 digits>.json` is a version, `ids.is_version_key`). Then it
lists the band and feed entries and removes each of the nested layouts written before
2026-12-07 (service.finding.keys) whose flat entry exists, and the folders that leaves
empty (SeaweedFS keeps a folder for each segment and refuses to delete one that is not
empty; on other S3 servers there is no such object to delete). A consumer following the
feed meanwhile sees each version once (service.finding.feed).

`stale_entries` finds the entries whose record does not exist, or is another write's (a
duplicate's receipt time, another SHA-256), and removes them. An entry whose record is
missing may belong to a write still in flight: it is looked at again once the settle window
has passed since the listing (by then that write has published its record or never will),
and only then called stale.

`stale_heads` finds the heads that are missing or do not hold their document's newest
version, and rewrites them from it. A head one version behind may be a write in flight
(its version created, its head not yet moved): it too is looked at again after the
settle window.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from service import ids
from service.archive import Archive
from service.errors import IntegrityError, ObjectNotFound, StorageError, StorageUnavailable
from service.finding import keys
from service.finding.entries import DEFAULT_SETTLE_SECONDS, IndexWriter, entry_keys
from service.jobs.takers import each
from service.storage.port import ObjectStore
from service.types import Record, record_decoder


class ReindexReport(msgspec.Struct, frozen=True):
    records: int  # record versions read
    created: int  # entries that were missing and are now written
    unreadable: list[str]  # record keys that could not be read (verify says why)
    heads: int = 0  # heads that were missing or behind and are now rewritten
    removed: int = 0  # nested band and feed entries removed, their flat entry being there


class StaleEntry(msgspec.Struct, frozen=True):
    key: str
    detail: str


async def reindex(
    writer: IndexWriter,
    *,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> ReindexReport:
    """Every entry of every record version; `progress` is told how many are done."""
    created = heads = done = 0
    unreadable: list[str] = []

    async def index(version: tuple[str, bool]) -> None:
        nonlocal created, heads, done
        key, newest = version
        try:
            data = await writer.store.get(key)
            record = record_decoder.decode(data)
        except (IntegrityError, ObjectNotFound, msgspec.DecodeError):
            unreadable.append(key)
        else:
            made = await writer.put_entries(entry_keys(record, hashlib.sha256(data).hexdigest()))
            created += sum(made)
            if newest:
                heads += await writer.archive.advance_head(record.id, record.version, data)
        done += 1
        if progress is not None:
            progress(done)

    await each(marked_version_keys(writer.store), index, concurrency)
    removed = await flatten(writer.store, concurrency)
    return ReindexReport(
        records=done, created=created, unreadable=sorted(unreadable), heads=heads, removed=removed
    )


async def flatten(store: ObjectStore, concurrency: int = 8) -> int:
    """Remove the band and feed entries of the nested layouts whose flat entry exists,
    with the folders that leaves empty; how many entries were removed. One without a flat
    entry (its record missing, unreadable or another write's) stays: verify tells which."""
    removed = 0

    async def nested() -> AsyncIterator[tuple[str, str]]:
        for family in (keys.SIMHASH, keys.CHANGES):
            async for key in listing(store, family):
                if (flat := keys.flat_key(key)) != key:
                    yield key, flat

    async def remove(entry: tuple[str, str]) -> None:
        nonlocal removed
        key, flat = entry
        try:
            await store.head(flat)
        except ObjectNotFound:
            return
        await store.delete(key)
        removed += 1
        folder, bucket = key.rpartition("/")[0], flat.rpartition("/")[0]
        while folder != bucket:  # the deepest first: SeaweedFS keeps one that is not empty
            await store.delete(f"{folder}/")
            folder = folder.rpartition("/")[0]

    await each(nested(), remove, concurrency)
    return removed


async def record_version_keys(store: ObjectStore) -> AsyncIterator[str]:
    """The key of every record version (no heads), in order, a listing page at a time."""
    async for key in listing(store, "records/"):
        if ids.is_version_key(key):
            yield key


async def marked_version_keys(store: ObjectStore) -> AsyncIterator[tuple[str, bool]]:
    """`record_version_keys`, each with whether it is its document's newest version (a
    document's versions are listed together, oldest first: the next key tells)."""
    previous: str | None = None
    async for key in record_version_keys(store):
        if previous is not None:
            yield previous, _document(previous) != _document(key)
        previous = key
    if previous is not None:
        yield previous, True


async def listing(store: ObjectStore, prefix: str) -> AsyncIterator[str]:
    """Every key under `prefix`, in order, read a page at a time (never all at once)."""
    after = ""
    while page := await store.list_page(prefix, start_after=after):
        for key in page:
            yield key
        after = page[-1]


def _document(version_key: str) -> str:
    return version_key.split("/")[1]


async def stale_heads(
    archive: Archive,
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    concurrency: int = 8,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[StaleEntry]:
    """The heads missing or not holding their newest version, rewritten from it. Only
    the suspects are kept while the listing streams."""
    listed_at = time.monotonic()
    suspects: list[str] = []  # newest version keys whose head looked wrong

    async def problem(newest_key: str) -> str | None:
        try:
            return await _head_problem(archive, newest_key)
        except StorageUnavailable:
            raise
        except StorageError as error:  # its version's check reports it, if need be
            return f"unreadable ({error.slug}: {error.detail})"

    async def first_look(version: tuple[str, bool]) -> None:
        key, newest = version
        if newest and await problem(key) is not None:
            suspects.append(key)

    await each(marked_version_keys(archive.store), first_look, concurrency)
    if suspects:  # a write in flight has moved its head by then
        await sleep(max(0.0, settle_seconds - (time.monotonic() - listed_at)))
    stale: list[StaleEntry] = []

    async def second_look(key: str) -> None:
        why = await problem(key)
        if why is None:
            return
        document_id = _document(key)
        stale.append(StaleEntry(ids.latest_key(document_id), why))
        try:
            data = await archive.store.get(key)
            await archive.advance_head(document_id, ids.version_of(key), data)
        except StorageUnavailable:
            raise
        except StorageError:  # a version that cannot be read: verify reports it
            pass

    await each(sorted(suspects), second_look, concurrency)
    return sorted(stale, key=lambda entry: entry.key)


async def _head_problem(archive: Archive, newest_key: str) -> str | None:
    """Why the document's head is not its newest version `newest_key`, or None."""
    document_id, version = newest_key.split("/")[1], ids.version_of(newest_key)
    head = await archive.head_record(document_id)
    if head is None:
        return "missing or unreadable"
    if head.version > version:
        return None  # a version written since the listing
    if head.version < version:
        return f"holds version {head.version}, the newest is {version}"
    try:
        info = await archive.store.head(newest_key)
    except ObjectNotFound:
        return None
    if info.sha256 != hashlib.sha256(head.data).hexdigest():
        return f"holds other bytes than version {version}"
    return None


async def stale_entries(
    store: ObjectStore,
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    concurrency: int = 8,
    remove: bool = True,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[StaleEntry]:
    """The index entries no record bears out (removed, unless `remove` is False). The
    listing is read a page at a time with `concurrency` takers; only suspects are kept."""
    listed_at = time.monotonic()
    suspects: list[StaleEntry] = []

    async def first_look(key: str) -> None:
        if (found := await _entry_problem(store, key)) is not None:
            suspects.append(StaleEntry(key, found))

    await each(listing(store, keys.ROOT), first_look, concurrency)
    missing = [entry.key for entry in suspects if entry.detail == _MISSING]
    if missing:  # a write still in flight has published its record by then, or never will
        await sleep(max(0.0, settle_seconds - (time.monotonic() - listed_at)))
    published: set[str] = set()

    async def second_look(key: str) -> None:
        if await _entry_problem(store, key) is None:
            published.add(key)

    await each(missing, second_look, concurrency)
    stale = sorted((entry for entry in suspects if entry.key not in published), key=lambda e: e.key)

    async def removed(entry: StaleEntry) -> None:
        await store.delete(entry.key)

    if remove:
        await each(stale, removed, concurrency)
    return stale


_MISSING = "its record does not exist"


async def _entry_problem(store: ObjectStore, key: str) -> str | None:
    """Why the entry is not its record's, or None when it is."""
    if key.startswith(keys.CHANGES):
        change = keys.parse_change(key)
        try:
            info = await store.head(ids.record_key(change.id, change.version))
        except ObjectNotFound:
            return _MISSING
        return None if info.sha256 == change.record_sha256 else "its record is another write's"
    if key.startswith(keys.SIMHASH):
        band = keys.parse_band(key)
        try:
            await store.head(ids.record_key(band.id, band.version))
        except ObjectNotFound:
            return _MISSING
        return None
    capture = keys.parse_entry(key)  # URL, external id, host or subdomain
    record = await _record(store, capture.id, capture.version)
    if record is None:
        return _MISSING
    if keys.received_instant(record.provenance.received_at) != capture.received:
        return "its record was received at another time (a duplicate's entry)"
    return None


async def _record(store: ObjectStore, document_id: str, version: int) -> Record | None:
    try:
        return record_decoder.decode(await store.get(ids.record_key(document_id, version)))
    except ObjectNotFound:
        return None
