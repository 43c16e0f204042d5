"""Keeping the indexes true to the records: `vellum reindex` and `vellum verify`'s part.

`reindex` writes every entry of every record version (the same `entry_keys` as the write
protocol, each a conditional create), so a run after any other run, or over an archive
indexed already, creates only what is missing. A record written before the change feed
had `began_at` gets its feed entry at its `received_at`. It also moves each document's
head (`records/<id>/latest.json`, service.archive) to its newest version where it is
missing or behind.

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
from collections.abc import Awaitable, Callable

import msgspec

from service import ids
from service.archive import Archive
from service.errors import IntegrityError, ObjectNotFound, StorageError, StorageUnavailable
from service.finding import keys
from service.finding.entries import DEFAULT_SETTLE_SECONDS, IndexWriter, entry_keys
from service.storage.port import ObjectStore
from service.types import Record, record_decoder


class ReindexReport(msgspec.Struct, frozen=True):
    records: int  # record versions read
    created: int  # entries that were missing and are now written
    unreadable: list[str]  # record keys that could not be read (verify says why)
    heads: int = 0  # heads that were missing or behind and are now rewritten


class StaleEntry(msgspec.Struct, frozen=True):
    key: str
    detail: str


async def reindex(
    writer: IndexWriter,
    *,
    concurrency: int = 8,
    on_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReindexReport:
    """Every entry of every record version; `on_total` is told how many versions there
    are, `progress` how many are done."""
    store = writer.store
    record_keys = await version_keys(store)
    newest = set(_newest_versions(record_keys).values())
    if on_total is not None:
        on_total(len(record_keys))
    limiter = asyncio.Semaphore(concurrency)
    created = heads = 0
    unreadable: list[str] = []
    done = 0

    async def index(key: str) -> None:
        nonlocal created, heads, done
        async with limiter:
            try:
                data = await store.get(key)
                record = record_decoder.decode(data)
            except (IntegrityError, ObjectNotFound, msgspec.DecodeError):
                unreadable.append(key)
            else:
                made = await writer.put_entries(
                    entry_keys(record, hashlib.sha256(data).hexdigest())
                )
                created += sum(made)
                if key in newest:
                    heads += await writer.archive.advance_head(record.id, record.version, data)
        done += 1
        if progress is not None:
            progress(done)

    await asyncio.gather(*(index(key) for key in record_keys))
    return ReindexReport(
        records=len(record_keys), created=created, unreadable=sorted(unreadable), heads=heads
    )


async def version_keys(store: ObjectStore) -> list[str]:
    """The key of every record version (no heads), in order."""
    return [key for key in await store.list_keys("records/") if ids.is_version_key(key)]


def _newest_versions(record_keys: list[str]) -> dict[str, str]:
    """Each document's newest version key, from version keys in order."""
    return {key.split("/")[1]: key for key in record_keys}


async def stale_heads(
    archive: Archive,
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    concurrency: int = 8,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[StaleEntry]:
    """The heads missing or not holding their newest version, rewritten from it."""
    limiter = asyncio.Semaphore(concurrency)
    listed_at = time.monotonic()
    newest = _newest_versions(await version_keys(archive.store))

    async def problem(document_id: str) -> str | None:
        async with limiter:
            try:
                return await _head_problem(archive, newest[document_id])
            except StorageUnavailable:
                raise
            except StorageError as error:  # its version's check reports it, if need be
                return f"unreadable ({error.slug}: {error.detail})"

    found = await asyncio.gather(*(problem(document_id) for document_id in newest))
    suspects = [document_id for document_id, why in zip(newest, found, strict=True) if why]
    if suspects:  # a write in flight has moved its head by then
        await sleep(max(0.0, settle_seconds - (time.monotonic() - listed_at)))
    again = await asyncio.gather(*(problem(document_id) for document_id in suspects))
    stale = [(doc, why) for doc, why in zip(suspects, again, strict=True) if why is not None]

    async def rewrite(document_id: str) -> None:
        key = newest[document_id]
        async with limiter:
            try:
                data = await archive.store.get(key)
                await archive.advance_head(document_id, ids.version_of(key), data)
            except StorageUnavailable:
                raise
            except StorageError:  # a version that cannot be read: verify reports it
                pass

    await asyncio.gather(*(rewrite(document_id) for document_id, _ in stale))
    return [StaleEntry(ids.latest_key(doc), why) for doc, why in stale]


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
    """The index entries no record bears out (removed, unless `remove` is False)."""
    limiter = asyncio.Semaphore(concurrency)
    listed_at = time.monotonic()

    async def problem(key: str) -> str | None:
        async with limiter:
            return await _entry_problem(store, key)

    listed = await store.list_keys(keys.ROOT)
    problems = await asyncio.gather(*(problem(key) for key in listed))
    suspects = [(key, found) for key, found in zip(listed, problems, strict=True) if found]
    missing = [key for key, found in suspects if found == _MISSING]
    if missing:  # a write still in flight has published its record by then, or never will
        await sleep(max(0.0, settle_seconds - (time.monotonic() - listed_at)))
    again = dict(
        zip(missing, await asyncio.gather(*(problem(key) for key in missing)), strict=True)
    )
    stale = [
        StaleEntry(key, found)
        for key, found in suspects
        if found != _MISSING or again[key] is not None
    ]
    if remove:
        await asyncio.gather(*(store.delete(entry.key) for entry in stale))
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
