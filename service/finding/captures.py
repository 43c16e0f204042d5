"""Reading captures from the URL, external id, host and subdomain indexes (the lookups by
URL and external id of service.finding.lookups): one listing or several merged newest
first, each entry checked against the record it names, one item per document.

Every listing is ordered by what follows its prefix, its *tail* (`<inverted
received_at>/<id>/…`), so one tail is a position in all of them: the merge takes, from
each listing's page, the entries up to the last one listed of every listing not read to
its end, and a cursor is the first listing's prefix and the tail to go on after. A
listing's filter (service.finding.hosts.Listing.keep) rules entries out by their key,
without a GET.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from datetime import datetime, timedelta

from service.archive import Archive
from service.errors import IntegrityError, NotFound
from service.finding import keys
from service.finding.cursors import MAX_PAGES, decode_cursor, encode_cursor, list_after
from service.finding.hosts import Listing
from service.finding.model import Capture, Captures, OriginalRef
from service.storage.port import ObjectStore
from service.types import Record

_PAGE = 1000
_CONCURRENCY = 16


async def read_captures(
    archive: Archive,
    plan: list[Listing],
    wanted: Callable[[Record], bool],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> Captures:
    """The captures of the listings of `plan`, merged newest first. Every listing is
    ordered by what follows its prefix (`<inverted received_at>/<id>/…`, a tail), so
    one tail is a position in all of them, and a cursor is the first listing's prefix
    and the tail to go on after."""
    first = plan[0].prefix
    resume = decode_cursor(cursor, "cursor", first).removeprefix(first) if cursor else ""
    if until is not None:  # past the entries received later
        resume = max(resume, f"{keys.inverted(until + timedelta(microseconds=1))}/~")
    streams = [_Stream(listing, resume, since) for listing in plan]
    items: list[Capture] = []
    taken: set[str] = set()  # documents answered (a document's versions are adjacent)
    pages = 0
    while True:
        empty = [stream for stream in streams if not stream.entries and not stream.done]
        if pages and pages + len(empty) > MAX_PAGES:
            return Captures(items=items, next=encode_cursor(first + resume))
        await asyncio.gather(*(stream.read(archive.store) for stream in empty))
        pages += len(empty)
        # Every entry up to the last one listed of each listing not read to its end:
        bound = min((stream.last for stream in streams if not stream.done), default=None)
        batch = sorted(
            (entry for stream in streams for entry in stream.take(bound)),
            key=lambda entry: entry[0],
        )
        entries = [(tail, entry) for tail, entry in batch if _group(tail) not in taken]
        looked = await _first_of_each(archive, entries, wanted, limit, items, taken)
        if len(items) == limit:
            return Captures(items=items, next=encode_cursor(first + looked))
        if bound is None:
            return Captures(items=items, next=None)
        resume = f"{_group(bound)}/~" if _group(bound) in taken else bound


async def _first_of_each(
    archive: Archive,
    entries: list[tuple[str, keys.Capture]],
    wanted: Callable[[Record], bool],
    limit: int,
    items: list[Capture],
    taken: set[str],
) -> str:
    """Add to `items`, up to `limit`, each document of `entries` (tails and entries,
    in order) by its first entry that checks out; return the tail to resume after,
    past the last document looked at."""
    groups: dict[str, list[keys.Capture]] = {}
    for tail, entry in entries:
        groups.setdefault(_group(tail), []).append(entry)
    limiter = asyncio.Semaphore(_CONCURRENCY)

    async def first(group: list[keys.Capture]) -> Capture | None:
        for entry in group:
            async with limiter:
                record = await readable(archive, entry.id, entry.version)
            if record is not None and _capture_of(record, entry) and wanted(record):
                return _item(record)
        return None

    names = list(groups)
    resume = ""
    while names and len(items) < limit:
        batch, names = names[: limit - len(items)], names[limit - len(items) :]
        found = await asyncio.gather(*(first(groups[name]) for name in batch))
        for name, item in zip(batch, found, strict=True):
            resume = f"{name}/~"  # past every version of this document
            if item is not None:
                items.append(item)
                taken.add(name)
    return resume


async def readable(archive: Archive, document_id: str, version: int | None = None) -> Record | None:
    """The record (the latest when `version` is None), or None when it does not exist or
    fails its digest."""
    try:
        return await archive.record(document_id, version)
    except (NotFound, IntegrityError):
        return None


def _group(tail: str) -> str:
    """An entry's `<inverted received_at>/<id>`: the same for every version of a capture."""
    return "/".join(tail.split("/", 2)[:2])


class _Stream:
    """One listing of a lookup, a page at a time, after the tail it was started at."""

    def __init__(self, listing: Listing, tail: str, since: datetime | None) -> None:
        self.listing = listing
        self.since = since  # entries received before it end the listing
        self.after = f"{listing.prefix}{tail}"  # the key to list after
        self.last = tail  # the tail of the last key listed
        self.entries: list[tuple[str, keys.Capture]] = []  # listed, not taken yet
        self.done = False  # listed to its end

    async def read(self, store: ObjectStore) -> None:
        prefix = self.listing.prefix
        page = await store.list_page(
            prefix, start_after=list_after(self.after, prefix), limit=_PAGE
        )
        self.done = len(page) < _PAGE
        if page:
            self.after, self.last = page[-1], page[-1].removeprefix(prefix)
        found = [(key.removeprefix(prefix), keys.parse_entry(key)) for key in page]
        if self.since is not None:
            newer = [entry for entry in found if entry[1].received >= self.since]
            self.done |= len(newer) < len(found)  # the rest is older still
            found = newer
        keep = self.listing.keep
        self.entries = [entry for entry in found if keep is None or keep(entry[1])]

    def take(self, bound: str | None) -> list[tuple[str, keys.Capture]]:
        """The entries listed up to the tail `bound` (all of them when None)."""
        cut = len(self.entries)
        if bound is not None:
            cut = bisect.bisect_right([tail for tail, _ in self.entries], bound)
        taken, self.entries = self.entries[:cut], self.entries[cut:]
        return taken


def _capture_of(record: Record, entry: keys.Capture) -> bool:
    """Whether the record is the one this entry was written for (not a duplicate's)."""
    return keys.received_instant(record.provenance.received_at) == entry.received


def _item(record: Record) -> Capture:
    return Capture(
        id=record.id,
        version=record.version,
        received_at=record.provenance.received_at,
        url=record.source.url,
        title=record.source.title,
        original=OriginalRef(sha256=record.original.sha256, size=record.original.size),
    )
