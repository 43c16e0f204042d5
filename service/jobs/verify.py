"""`vellum verify`: re-hash every original and record and report what is wrong.

Findings, one per object:
- `corrupt`: an original whose bytes do not hash to its key; a record whose bytes do not
  hash to the SHA-256 kept with it, that does not decode as a record, whose id or version
  disagree with its key, or whose `fingerprints.sha256` does not match its text;
- `missing`: an original that a record names but that is not there;
- `unreferenced`: an original no record names (left by a write that failed between its
  two steps; harmless, reported so it can be cleaned up);
- `stale-index`: an index entry whose record does not exist or is another write's (left by
  a write that failed between its entries and its record, or by a duplicate): removed,
  as lookups skip it anyway (service.finding.maintenance); also a document's head
  (`records/<id>/latest.json`) that is missing or does not hold its newest version:
  rewritten from it.
- `unreadable`: an object listed that could not be read (gone since, access refused):
  reported, and the check goes on (the original of an unreadable record is then reported
  unreferenced too: what it names is not known); only storage going away stops it.

At most `concurrency` objects are in hand at once, taken in turn from the listings (no
task per object).

On a live archive documents are written while verify runs. Records are listed before
originals: a record is written after its original, so every listed record's original is
in the later listing, and a document is never reported `missing` for arriving in
between. An original whose record arrived after the records were listed would look
unreferenced: before reporting any, verify lists the records again and reads those that
are new, so `unreferenced` means no record named the original when the check ended.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from service import ids
from service.archive import Archive
from service.errors import IntegrityError, ObjectNotFound, StorageError, StorageUnavailable
from service.finding.entries import DEFAULT_SETTLE_SECONDS
from service.finding.maintenance import stale_entries, stale_heads, version_keys
from service.jobs.takers import each
from service.storage.port import BulkStore
from service.types import Record, record_decoder

Kind = Literal["corrupt", "missing", "unreadable", "unreferenced", "stale-index"]


class Finding(msgspec.Struct, frozen=True):
    kind: Kind
    key: str
    detail: str


class Report(msgspec.Struct, frozen=True):
    originals: int
    records: int
    findings: list[Finding]


async def verify(
    store: BulkStore,
    *,
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
) -> Report:
    """`progress`, if given, hears (objects checked, objects listed) after the listing
    and after each object."""
    records = await _record_keys(store)  # first: see the module's docstring
    originals = await store.list_keys("originals/sha256/")
    total = len(records) + len(originals)
    if progress is not None:
        progress(0, total)
    findings: list[Finding] = []
    referenced: set[str] = set()
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    async def check_original(key: str) -> None:
        data = await _read(store, key)
        if data is None or hashlib.sha256(data).hexdigest() != key.rsplit("/", 1)[1]:
            findings.append(Finding("corrupt", key, "its bytes do not hash to its name"))
        tick()

    async def check_record(key: str) -> None:
        data = await _read(store, key)
        if data is None:  # the store refused to hand out bytes that fail their digest
            findings.append(
                Finding("corrupt", key, "its bytes do not hash to the SHA-256 stored with it")
            )
            if (damaged := await _read_unchecked(store, key)) is not None:
                referenced.update(_named_original(damaged))
            tick()
            return
        problem = _record_problem(key, data)
        if problem is not None:
            findings.append(Finding("corrupt", key, problem))
            referenced.update(_named_original(data))  # don't call its original unreferenced
        else:
            record = record_decoder.decode(data)
            referenced.add(record.original.key)
            if record.original.key not in originals_set:
                findings.append(
                    Finding("missing", record.original.key, f"named by {key}, not in storage")
                )
        tick()

    async def names_of_new_record(key: str) -> None:
        data = await _read(store, key)
        referenced.update(_named_original(data) if data is not None else [])

    def or_unreadable(check: Callable[[str], Awaitable[None]]) -> Check:
        async def guarded(key: str) -> None:
            try:
                await check(key)
            except StorageUnavailable:
                raise
            except StorageError as error:
                findings.append(Finding("unreadable", key, f"{error.slug}: {error.detail}"))
                tick()

        return guarded

    originals_set = set(originals)
    await each(originals, or_unreadable(check_original), concurrency)
    await each(records, or_unreadable(check_record), concurrency)
    if originals_set - referenced:  # records that arrived meanwhile may name them
        listed = set(records)
        arrived = [key for key in await _record_keys(store) if key not in listed]
        await each(arrived, or_unreadable(names_of_new_record), concurrency)
    findings.extend(
        Finding("unreferenced", key, "no record names this original")
        for key in sorted(originals_set - referenced)
    )
    stale, heads = await asyncio.gather(
        stale_entries(store, settle_seconds=settle_seconds, concurrency=concurrency),
        stale_heads(Archive(store), settle_seconds=settle_seconds, concurrency=concurrency),
    )
    findings.extend(
        Finding("stale-index", entry.key, f"{entry.detail}: removed") for entry in stale
    )
    findings.extend(
        Finding("stale-index", head.key, f"{head.detail}: rewritten from the newest version")
        for head in heads
    )
    order = {"corrupt": 0, "missing": 1, "unreadable": 2, "unreferenced": 3, "stale-index": 4}
    findings.sort(key=lambda finding: (order[finding.kind], finding.key))
    return Report(originals=len(originals), records=len(records), findings=findings)


Check = Callable[[str], Awaitable[None]]


async def _record_keys(store: BulkStore) -> list[str]:
    return await version_keys(store)


async def _read(store: BulkStore, key: str) -> bytes | None:
    """The object's bytes, or None when they fail the digest kept with them."""
    try:
        return await store.get(key)
    except IntegrityError:
        return None


async def _read_unchecked(store: BulkStore, key: str) -> bytes | None:
    """A damaged object's bytes anyway (ranged reads are not checked), to learn what a
    corrupt record still names."""
    try:
        return await store.get_range(key, 0, await store.size(key))
    except ObjectNotFound:
        return None


def _named_original(data: bytes) -> list[str]:
    """The original a damaged record still names, if its JSON can be read at all."""
    try:
        named = msgspec.json.decode(data)["original"]["key"]
    except (msgspec.DecodeError, UnicodeDecodeError, KeyError, TypeError):
        return []
    return [named] if isinstance(named, str) else []


def _record_problem(key: str, data: bytes) -> str | None:
    """What is wrong with a record whose bytes passed their digest, or None."""
    try:
        record: Record = record_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return f"not a readable record: {exc}"
    if ids.record_key(record.id, record.version) != key:
        return f"holds {record.id} version {record.version}, not what its key says"
    if hashlib.sha256(record.text.encode()).hexdigest() != record.fingerprints.sha256:
        return "its text does not match its fingerprints.sha256"
    return None
