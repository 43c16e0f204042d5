"""Keeping the indexes true to the records: `vellum reindex` and `vellum verify`'s part.

`reindex` writes every entry of every record version (the same `entry_keys` as the write
protocol, each a conditional create), so a run after any other run, or over an archive
indexed already, creates only what is missing. A record written before the change feed
had `began_at` gets its feed entry at its `received_at`. It reads the versions' keys from
the listing a page at a time, with `concurrency` takers (no listing of every key, no task
per version), and skips other keys under `records/` (only `<9 digits>.json` is a version).

`stale_entries` finds the entries whose record does not exist, or is another write's (a
duplicate's receipt time, another SHA-256), and removes them. An entry whose record is
missing may belong to a write still in flight: it is looked at again once the settle window
has passed since the listing (by then that write has published its record or never will),
and only then called stale.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec

from service import ids
from service.errors import IntegrityError, ObjectNotFound
from service.finding import keys
from service.finding.entries import DEFAULT_SETTLE_SECONDS, IndexWriter, entry_keys
from service.jobs.takers import each
from service.storage.port import ObjectStore
from service.types import Record, record_decoder

_VERSION_NAME = re.compile(r"[0-9]{9}\.json")  # a record version's name (service.ids)


class ReindexReport(msgspec.Struct, frozen=True):
    records: int  # record versions read
    created: int  # entries that were missing and are now written
    unreadable: list[str]  # record keys that could not be read (verify says why)


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
    store = writer.store
    created = 0
    unreadable: list[str] = []
    done = 0

    async def index(key: str) -> None:
        nonlocal created, done
        try:
            data = await store.get(key)
            record = record_decoder.decode(data)
        except (IntegrityError, ObjectNotFound, msgspec.DecodeError):
            unreadable.append(key)
        else:
            made = await writer.put_entries(entry_keys(record, hashlib.sha256(data).hexdigest()))
            created += sum(made)
        done += 1
        if progress is not None:
            progress(done)

    await each(record_version_keys(store), index, concurrency)
    return ReindexReport(records=done, created=created, unreadable=sorted(unreadable))


async def record_version_keys(store: ObjectStore) -> AsyncIterator[str]:
    """The key of every record version, in order, read a listing page at a time."""
    async for key in listing(store, "records/"):
        if _VERSION_NAME.fullmatch(key.rpartition("/")[2]):
            yield key


async def listing(store: ObjectStore, prefix: str) -> AsyncIterator[str]:
    """Every key under `prefix`, in order, read a page at a time (never all at once)."""
    after = ""
    while page := await store.list_page(prefix, start_after=after):
        for key in page:
            yield key
        after = page[-1]


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
    family = keys.URL if key.startswith(keys.URL) else keys.EXTERNAL_ID
    capture = keys.parse_capture(family, key)
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
