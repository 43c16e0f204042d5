"""The lookups of SPEC §9, as a plain async API (the HTTP handlers and the CLI use it).

Each lookup is a prefix listing of one index (service.finding.keys), in pages of
`list_page`, then a check of each entry against the record it names, because an entry
may have been left by a write that never published its record, or by a duplicate whose
record has another receipt time (service.finding.entries):

- URL and external id: per document found, one GET of its record (what an item shows:
  url and title as asserted, the original), which must exist and have the receipt time
  and the URL or external id of the entry. Versions of a document are adjacent in the
  index, newest first: the first that checks out is the item. `exact` reads the URL
  index; `prefix`, `host` and `domain` one or two listings of the host and subdomain
  indexes (service.finding.hosts), merged newest first: entries a listing's filter
  rules out by their key cost no GET.
- similar: the four band listings, distances computed from the keys; one LIST of each
  candidate's versions confirms it and names its latest version.
- changes: one HEAD per entry (service.finding.feed).

A lookup reads at most `MAX_PAGES` listing pages per call (all its listings together);
past them it answers what it found with a cursor to go on from.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from datetime import datetime, timedelta

from service.archive import Archive
from service.errors import BadParameter, IntegrityError, NotFound
from service.finding import keys
from service.finding.canonical import NotAUrl, canonical, exact_prefix, matches
from service.finding.cursors import MAX_PAGES, decode_cursor, encode_cursor, list_after
from service.finding.entries import DEFAULT_SETTLE_SECONDS, source_url
from service.finding.feed import read_changes
from service.finding.hosts import Listing, listings
from service.finding.model import Capture, Captures, Changes, Match, OriginalRef
from service.storage.port import ObjectStore
from service.timestamps import utc_now
from service.types import NearDuplicate, Record

_PAGE = 1000
_CONCURRENCY = 16


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class Finder:
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
        self.clock = clock

    async def by_url(
        self,
        url: str,
        match: Match = "exact",
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Captures:
        """Captures of `url` (`match`: exact, prefix, host, domain), received between
        `since` and `until` (inclusive), newest first: `exact` from the URL index,
        the others from the host and subdomain indexes (service.finding.hosts)."""
        try:
            asked = canonical(url)
        except NotAUrl as exc:
            raise BadParameter(f"url: {exc}", parameter="url") from None

        def wanted(record: Record) -> bool:
            found = source_url(record)
            return found is not None and matches(found, asked, match)

        plan = [Listing(exact_prefix(asked))] if match == "exact" else listings(asked, match)
        return await self._captures(plan, wanted, since, until, limit, cursor)

    async def by_external_id(
        self,
        external_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Captures:
        """Documents whose asserted external id is `external_id`, newest first."""
        prefix = f"{keys.EXTERNAL_ID}{keys.key_text(external_id)}{keys.END}"
        return await self._captures(
            [Listing(prefix)],
            lambda record: record.source.external_id == external_id,
            since,
            until,
            limit,
            cursor,
        )

    async def _captures(
        self,
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
            await asyncio.gather(*(stream.read(self.store) for stream in empty))
            pages += len(empty)
            # Every entry up to the last one listed of each listing not read to its end:
            bound = min((stream.last for stream in streams if not stream.done), default=None)
            batch = sorted(
                (entry for stream in streams for entry in stream.take(bound)),
                key=lambda entry: entry[0],
            )
            entries = [(tail, entry) for tail, entry in batch if _group(tail) not in taken]
            looked = await self._first_of_each(entries, wanted, limit, items, taken)
            if len(items) == limit:
                return Captures(items=items, next=encode_cursor(first + looked))
            if bound is None:
                return Captures(items=items, next=None)
            resume = f"{_group(bound)}/~" if _group(bound) in taken else bound

    async def _first_of_each(
        self,
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
                    record = await self._record(entry.id, entry.version)
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

    async def _record(self, document_id: str, version: int) -> Record | None:
        try:
            return await self.archive.record(document_id, version)
        except (NotFound, IntegrityError):
            return None

    async def similar(self, document_id: str, max_distance: int = 3) -> list[NearDuplicate]:
        """Documents whose latest simhash is within `max_distance` bits of this document's
        latest record's, itself excluded, by distance then id."""
        return await self.near(await self.archive.record(document_id), max_distance)

    async def near(self, record: Record, max_distance: int = 3) -> list[NearDuplicate]:
        simhash = record.fingerprints.simhash
        listings = await asyncio.gather(
            *(self.store.list_keys(keys.band_prefix(b, simhash)) for b in range(keys.BANDS))
        )
        seen: dict[str, dict[int, str]] = {}
        for key in (key for listing in listings for key in listing):
            band = keys.parse_band(key)
            if band.id != record.id and distance(band.simhash, simhash) <= max_distance:
                seen.setdefault(band.id, {})[band.version] = band.simhash

        async def confirmed(candidate: str) -> NearDuplicate | None:
            try:
                latest = (await self.archive.versions(candidate))[-1]
            except NotFound:
                return None  # entries of a write that never published its record
            found = seen[candidate].get(latest)
            if found is None:
                current = await self._record(candidate, latest)
                found = current.fingerprints.simhash if current is not None else None
            if found is None or distance(found, simhash) > max_distance:
                return None
            return NearDuplicate(id=candidate, distance=distance(found, simhash))

        results = await asyncio.gather(*(confirmed(candidate) for candidate in sorted(seen)))
        return sorted((r for r in results if r is not None), key=lambda r: (r.distance, r.id))

    async def changes(self, after: str | None = None, limit: int = 100) -> Changes:
        """Record versions in order of `at`, after the cursor `after` (from the start
        when None), only those older than the settle window (service.finding.feed)."""
        return await read_changes(self.store, after, limit, self.clock() - self.settle)


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
