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
  indexes (service.finding.hosts), merged newest first (service.finding.captures).
- similar: the four band listings, distances computed from the keys; one LIST of each
  candidate's versions confirms it and names its latest version.
- changes: one HEAD per entry (service.finding.feed).

A lookup reads at most `MAX_PAGES` listing pages per call (all its listings together);
past them it answers what it found with a cursor to go on from. Each lookup answered is
told to `on_lookup` (its kind, one of model.LOOKUP_KINDS, and its seconds): the metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from service.archive import Archive
from service.errors import BadParameter
from service.finding import keys
from service.finding.canonical import NotAUrl, canonical, exact_prefix, matches
from service.finding.captures import read_captures, readable
from service.finding.entries import DEFAULT_SETTLE_SECONDS, source_url
from service.finding.feed import read_changes
from service.finding.hosts import Listing, listings
from service.finding.model import Captures, Changes, Match
from service.timestamps import utc_now
from service.types import NearDuplicate, Record

T = TypeVar("T")
CONFIRMING = 8  # near-duplicate candidates read at once: one request, a few S3 slots


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class Finder:
    def __init__(
        self,
        archive: Archive,
        *,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], datetime] = utc_now,
        on_lookup: Callable[[str, float], None] | None = None,
    ) -> None:
        self.archive = archive
        self.store = archive.store
        self.settle = timedelta(seconds=settle_seconds)
        self.clock = clock
        self.on_lookup = on_lookup

    def _answered(self, kind: str, started: float, answer: T) -> T:
        if self.on_lookup is not None:
            self.on_lookup(kind, time.perf_counter() - started)
        return answer

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
        started = time.perf_counter()
        try:
            asked = canonical(url)
        except NotAUrl as exc:
            raise BadParameter(f"url: {exc}", parameter="url") from None

        def wanted(record: Record) -> bool:
            found = source_url(record)
            return found is not None and matches(found, asked, match)

        plan = [Listing(exact_prefix(asked))] if match == "exact" else listings(asked, match)
        found = await read_captures(self.archive, plan, wanted, since, until, limit, cursor)
        return self._answered(f"url_{match}", started, found)

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
        started = time.perf_counter()
        prefix = f"{keys.EXTERNAL_ID}{keys.key_text(external_id)}{keys.END}"
        found = await read_captures(
            self.archive,
            [Listing(prefix)],
            lambda record: record.source.external_id == external_id,
            since,
            until,
            limit,
            cursor,
        )
        return self._answered("external_id", started, found)

    async def similar(self, document_id: str, max_distance: int = 3) -> list[NearDuplicate]:
        """Documents whose latest simhash is within `max_distance` bits of this document's
        latest record's, itself excluded, by distance then id."""
        started = time.perf_counter()
        found = await self._near(await self.archive.record(document_id), max_distance)
        return self._answered("similar", started, found)

    async def near(self, record: Record, max_distance: int = 3) -> list[NearDuplicate]:
        """The same for a record in hand (a POST's `near_duplicates`, the viewer)."""
        started = time.perf_counter()
        return self._answered("similar", started, await self._near(record, max_distance))

    async def _near(self, record: Record, max_distance: int) -> list[NearDuplicate]:
        simhash = record.fingerprints.simhash
        bands = await asyncio.gather(
            *(self.store.list_keys(keys.band_prefix(b, simhash)) for b in range(keys.BANDS))
        )
        candidates = {
            band.id
            for band in (keys.parse_band(key) for listing in bands for key in listing)
            if band.id != record.id and distance(band.simhash, simhash) <= max_distance
        }
        taking = asyncio.Semaphore(CONFIRMING)

        async def confirmed(candidate: str) -> NearDuplicate | None:
            """The candidate as its latest version stands (one GET of its head): an entry
            may be of an older version, or of a write that never published its record."""
            async with taking:
                current = await readable(self.archive, candidate)
            if current is None:
                return None
            found = distance(current.fingerprints.simhash, simhash)
            return None if found > max_distance else NearDuplicate(id=candidate, distance=found)

        results = await asyncio.gather(*(confirmed(candidate) for candidate in candidates))
        return sorted((r for r in results if r is not None), key=lambda r: (r.distance, r.id))

    async def changes(self, after: str | None = None, limit: int = 100) -> Changes:
        """Record versions in order of `at`, after the cursor `after` (from the start
        when None), only those older than the settle window (service.finding.feed)."""
        started = time.perf_counter()
        found = await read_changes(self.store, after, limit, self.clock() - self.settle)
        return self._answered("changes", started, found)
