"""Index entries in the write protocol: written before the record they index.

`IndexWriter.publish(record)` is step 3 of the write protocol (service.ingest, and
service.jobs.reprocess for later versions):

1. every entry of the record (`entry_keys`: the change feed; the URL, its host and parent
   domains (service.finding.hosts) and the external id when asserted; the four simhash
   bands) is created at once, empty, conditionally;
2. if the write is still within its deadline, `DEADLINE_SHARE` of the change feed's
   settle window after `at` (the record's `began_at`), the record is created; past it,
   nothing more is written and the caller gets WriteDeadlinePassed (503): the feed serves
   an entry only once it is older than the settle window, so a record must be visible by
   then or never. (A record PUT that started in time but stays in flight past the rest of
   the window is the one case left: it is logged as `change_published_late`.)
3. when the record exists already (a duplicate, a retry, a lost race) the entries this
   call created that the stored record does not have are deleted again, and the stored
   record is returned.

A crash between 1 and 2 leaves entries whose record does not exist: lookups skip them
(service.finding.lookups), `vellum verify` removes them (service.finding.maintenance). A
document answered 201 has all its entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from service.archive import Archive
from service.errors import StorageError, WriteDeadlinePassed
from service.finding import hosts, keys
from service.finding.canonical import Canonical, NotAUrl, canonical
from service.media import TEXT_PLAIN
from service.timestamps import utc_now
from service.types import Record, record_encoder

DEFAULT_SETTLE_SECONDS = 5.0
DEADLINE_SHARE = 0.6  # of the settle window, for the entries and the start of the record
_EMPTY_SHA256 = hashlib.sha256(b"").digest()
log = structlog.get_logger("vellum")


def record_at(record: Record) -> datetime:
    """When the record's write began: the change feed's `at`."""
    provenance = record.provenance
    return keys.received_instant(provenance.began_at or provenance.received_at)


def record_sha256(record: Record) -> str:
    return hashlib.sha256(record_encoder.encode(record)).hexdigest()


def entry_keys(record: Record, sha256: str | None = None) -> list[str]:
    """Every index entry of one record version (its bytes' SHA-256 given, if known)."""
    received = keys.received_instant(record.provenance.received_at)
    digest = sha256 or record_sha256(record)
    found = [keys.change_key(record_at(record), record.id, record.version, received, digest)]
    url = source_url(record)
    if url is not None:
        found.append(keys.lookup_key(keys.URL, url.surt, received, record.id, record.version))
        found += hosts.entry_keys(url.surt, url.host, received, record.id, record.version)
    if record.source.external_id is not None:
        found.append(
            keys.lookup_key(
                keys.EXTERNAL_ID, record.source.external_id, received, record.id, record.version
            )
        )
    simhash = record.fingerprints.simhash
    found += [keys.band_key(band, simhash, record.id, record.version) for band in range(keys.BANDS)]
    return found


def source_url(record: Record) -> Canonical | None:
    """The canonical form of the record's asserted URL; None when none (or no host) is
    asserted."""
    if record.source.url is None:
        return None
    try:
        return canonical(record.source.url)
    except NotAUrl:
        return None


class IndexWriter:
    def __init__(
        self,
        archive: Archive,
        *,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.archive = archive
        self.store = archive.store
        self.settle = timedelta(seconds=settle_seconds)
        self.deadline = timedelta(seconds=settle_seconds * DEADLINE_SHARE)
        self.clock = clock

    async def put_entries(self, entries: list[str]) -> list[bool]:
        """Create the entries at once; True for each this call created."""
        return list(
            await asyncio.gather(
                *(
                    self.store.put_if_absent(
                        key, b"", sha256=_EMPTY_SHA256, content_type=TEXT_PLAIN
                    )
                    for key in entries
                )
            )
        )

    async def publish(self, record: Record) -> Record | None:
        """Write the record's entries, then the record. None if this call created the
        record; else the record stored already under that id and version."""
        at = record_at(record)
        entries = entry_keys(record)
        created = await self.put_entries(entries)
        if self.clock() - at > self.deadline:
            raise WriteDeadlinePassed(
                f"the index entries of {record.id} took longer than the change feed's "
                f"deadline of {self.deadline.total_seconds():g} s; nothing was published",
                limit_seconds=self.deadline.total_seconds(),
            )
        if await self.archive.put_record(record):
            if self.clock() - at > self.settle:
                log.error("change_published_late", id=record.id, version=record.version)
            return None
        stored = await self.archive.record(record.id, record.version)
        kept = set(entry_keys(stored))
        mine = [key for key, made in zip(entries, created, strict=True) if made and key not in kept]
        with contextlib.suppress(StorageError):  # leftovers are skipped, and verify removes them
            await asyncio.gather(*(self.store.delete(key) for key in mine))
        return stored
