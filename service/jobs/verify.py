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

At most `concurrency` objects are in hand at once, taken in turn from the listings, read
a page at a time (no task per object, no listing held whole). What verify has to remember
to tell `missing` and `unreferenced` (the keys listed, the original each record names)
goes into a temporary SQLite file, so its memory does not grow with the archive. Only
`<9 digits>.json` keys under `records/` are record versions; other keys there are not
checked.

On a live archive documents are written while verify runs. Records are listed (and
checked) before originals: a record is written after its original, so every listed
record's original is in the later listing, and a document is never reported `missing`
for arriving in between. An original whose record arrived after the records were listed
would look unreferenced: before reporting any, verify lists the records again and reads
those that are new, so `unreferenced` means no record named the original when the check
ended.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from service import ids
from service.archive import Archive
from service.errors import IntegrityError, ObjectNotFound, StorageError, StorageUnavailable
from service.finding.entries import DEFAULT_SETTLE_SECONDS
from service.finding.maintenance import (
    listing,
    record_version_keys,
    stale_entries,
    stale_heads,
)
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
    """`progress`, if given, hears (objects checked, objects listed so far) after each
    object."""
    with tempfile.TemporaryDirectory(prefix="vellum-verify-") as scratch:
        ledger = _Ledger(Path(scratch) / "listed.sqlite3")
        try:
            return await _verify(store, ledger, concurrency, progress, settle_seconds)
        finally:
            ledger.close()


async def _verify(
    store: BulkStore,
    ledger: _Ledger,
    concurrency: int,
    progress: Callable[[int, int], None] | None,
    settle_seconds: float,
) -> Report:
    findings: list[Finding] = []
    listed = {"records": 0, "originals": 0}
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, sum(listed.values()))

    async def noted(keys: AsyncIterator[str], table: _Table) -> AsyncIterator[str]:
        async for key in keys:
            ledger.add(table, key)
            listed[table] += 1
            yield key

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
                ledger.name(_named_original(damaged), key)
            tick()
            return
        problem = _record_problem(key, data)
        if problem is not None:
            findings.append(Finding("corrupt", key, problem))
            ledger.name(_named_original(data), key)  # don't call its original unreferenced
        else:
            ledger.name([record_decoder.decode(data).original.key], key, sound=True)
        tick()

    async def names_of_new_record(key: str) -> None:
        if not ledger.has("records", key):
            data = await _read(store, key)
            ledger.name(_named_original(data) if data is not None else [], key)

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

    # Records first: see the module's docstring.
    records = noted(record_version_keys(store), "records")
    await each(records, or_unreadable(check_record), concurrency)
    originals = noted(listing(store, "originals/sha256/"), "originals")
    await each(originals, or_unreadable(check_original), concurrency)
    findings.extend(
        Finding("missing", original, f"named by {record}, not in storage")
        for original, record in ledger.missing()
    )
    if ledger.any_unreferenced():  # records that arrived meanwhile may name them
        await each(record_version_keys(store), or_unreadable(names_of_new_record), concurrency)
    findings.extend(
        Finding("unreferenced", key, "no record names this original")
        for key in ledger.unreferenced()
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
    return Report(originals=listed["originals"], records=listed["records"], findings=findings)


Check = Callable[[str], Awaitable[None]]
_Table = Literal["records", "originals"]
_UNREFERENCED = "SELECT key FROM originals WHERE key NOT IN (SELECT original FROM named)"


class _Ledger:
    """The keys verify listed and the originals the records name, in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit; no journal, no fsync
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE records (key TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE originals (key TEXT PRIMARY KEY) WITHOUT ROWID;
            -- sound: named by a record that passed its checks (else only kept referenced)
            CREATE TABLE named (original TEXT, record TEXT, sound INTEGER);
            CREATE INDEX named_original ON named (original);
            """
        )

    def add(self, table: _Table, key: str) -> None:
        self.db.execute(f"INSERT OR IGNORE INTO {table} VALUES (?)", (key,))  # noqa: S608

    def has(self, table: _Table, key: str) -> bool:
        query = f"SELECT 1 FROM {table} WHERE key = ?"  # noqa: S608 (a fixed table name)
        return self.db.execute(query, (key,)).fetchone() is not None

    def name(self, originals: list[str], record: str, *, sound: bool = False) -> None:
        self.db.executemany(
            "INSERT INTO named VALUES (?, ?, ?)", [(key, record, sound) for key in originals]
        )

    def missing(self) -> Iterator[tuple[str, str]]:
        """(original, record) for each sound record whose original was not listed."""
        yield from self.db.execute(
            "SELECT original, record FROM named WHERE sound"
            " AND original NOT IN (SELECT key FROM originals) ORDER BY original"
        )

    def any_unreferenced(self) -> bool:
        return bool(self.db.execute(f"SELECT EXISTS ({_UNREFERENCED})").fetchone()[0])

    def unreferenced(self) -> Iterator[str]:
        for (key,) in self.db.execute(f"{_UNREFERENCED} ORDER BY key"):
            yield key

    def close(self) -> None:
        self.db.close()


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
