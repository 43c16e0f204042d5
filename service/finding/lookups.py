"""The lookups of SPEC §9, as a plain async API (the HTTP handlers and the CLI use it).

Each lookup is a prefix listing of one index (service.finding.keys), in pages of
`list_page`, then a check of each entry against the record it names, because an entry
may have been left by a write that never published its record, or by a duplicate whose
record has another receipt time (service.finding.entries):

- URL and external id: per document found, one GET of its record (what an item shows:
  url and title as asserted, the original), which must exist and have the receipt time
  and the URL or external id of the entry. Versions of a document are adjacent in the
  index, newest first: the first that checks out is the item.
- similar: the four band listings, distances computed from the keys; one LIST of each
  candidate's versions confirms it and names its latest version.
- changes: one HEAD per entry: the record must exist and hold the SHA-256 the entry names.
  Only entries older than the settle window are read, and a write publishes its record
  within it or never, so an entry skipped once is skipped for ever.

A lookup reads at most `MAX_PAGES` listing pages per call; past them it answers what it
found with a cursor to go on from.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from datetime import datetime, timedelta

from service.archive import Archive
from service.errors import BadParameter, IntegrityError, NotFound, ObjectNotFound
from service.finding import keys
from service.finding.canonical import Canonical, NotAUrl, canonical
from service.finding.entries import DEFAULT_SETTLE_SECONDS, url_text
from service.finding.model import Capture, Captures, Change, Changes, Match, OriginalRef
from service.ids import record_key
from service.timestamps import rfc3339, utc_now
from service.types import NearDuplicate, Record

MAX_PAGES = 10
_PAGE = 1000
_CONCURRENCY = 16


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"k:{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str, family: str) -> str:
    """The key a cursor resumes after; BadParameter unless it is one of `family`'s."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("k:") or not text[2:].startswith(family):
        raise BadParameter(f"{name} is not a cursor this lookup gave out", parameter=name)
    return text[2:]


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
        `since` and `until` (inclusive), newest first (for prefix, host and domain: by
        URL in SURT order, newest first for each URL, as the CDX server sorts them)."""
        try:
            asked = canonical(url)
        except NotAUrl as exc:
            raise BadParameter(f"url: {exc}", parameter="url") from None
        prefixes = _url_prefixes(asked, match)

        def wanted(record: Record) -> bool:
            found = url_text(record)
            return found is not None and _matches(canonical_of(found), asked, match)

        return await self._captures(
            keys.URL, prefixes, wanted, since, until, limit, cursor, sorted_by_time=match == "exact"
        )

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
            keys.EXTERNAL_ID,
            [prefix],
            lambda record: record.source.external_id == external_id,
            since,
            until,
            limit,
            cursor,
            sorted_by_time=True,
        )

    async def _captures(
        self,
        family: str,
        prefixes: list[str],
        wanted: Callable[[Record], bool],
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
        *,
        sorted_by_time: bool,
    ) -> Captures:
        after = decode_cursor(cursor, "cursor", family) if cursor else ""
        items: list[Capture] = []
        taken: set[str] = set()  # documents answered (a document's versions are adjacent)
        pages = 0
        for prefix in prefixes:
            start = after
            if sorted_by_time and until is not None:  # past the entries received later
                past = until + timedelta(microseconds=1)
                start = max(start, f"{prefix}{keys.inverted(past)}/~")
            while True:
                if pages == MAX_PAGES:
                    return Captures(items=items, next=encode_cursor(max(start, prefix)))
                page = await self.store.list_page(
                    prefix, start_after=_after(start, prefix), limit=_PAGE
                )
                pages += 1
                entries = [keys.parse_capture(family, key) for key in page]
                exhausted = len(page) < _PAGE
                if sorted_by_time and since is not None:
                    newer = [entry for entry in entries if entry.received >= since]
                    exhausted |= len(newer) < len(entries)  # the rest is older still
                    entries = newer
                entries = [
                    entry
                    for entry in entries
                    if _within(entry.received, since, until) and _group(entry.key) not in taken
                ]
                resume = await self._first_of_each(entries, wanted, limit, items, taken)
                if len(items) == limit:
                    return Captures(items=items, next=encode_cursor(resume))
                if exhausted:
                    break
                last = _group(page[-1])
                start = f"{last}/~" if last in taken else page[-1]
        return Captures(items=items, next=None)

    async def _first_of_each(
        self,
        entries: list[keys.Capture],
        wanted: Callable[[Record], bool],
        limit: int,
        items: list[Capture],
        taken: set[str],
    ) -> str:
        """Add to `items`, up to `limit`, each document of `entries` (in order) by its
        first entry that checks out; return the key to resume after, past the last
        document looked at."""
        groups: dict[str, list[keys.Capture]] = {}
        for entry in entries:
            groups.setdefault(_group(entry.key), []).append(entry)
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
        when None), only those older than the settle window."""
        start = decode_cursor(after, "after", keys.CHANGES) if after else keys.CHANGES
        horizon = self.clock() - self.settle
        items: list[Change] = []
        for _ in range(MAX_PAGES):
            page = await self.store.list_page(
                keys.CHANGES, start_after=_after(start, keys.CHANGES), limit=limit
            )
            settled = [keys.parse_change(key) for key in page]
            settled = [change for change in settled if change.at < horizon]
            valid = await asyncio.gather(*(self._published(change) for change in settled))
            for change, published in zip(settled, valid, strict=True):
                start = change.key
                if published:
                    items.append(_change(change))
                if len(items) == limit:
                    return Changes(items=items, next=encode_cursor(start))
            if len(settled) < len(page) or len(page) < limit:
                break
        return Changes(items=items, next=encode_cursor(start))

    async def _published(self, change: keys.Change) -> bool:
        try:
            info = await self.store.head(record_key(change.id, change.version))
        except ObjectNotFound:
            return False
        return info.sha256 == change.record_sha256


def canonical_of(surt: str) -> Canonical:
    authority, _, rest = surt.partition(")")
    host, colon, port = authority.rpartition(":") if not authority.endswith("]") else ("", "", "")
    if not colon or not port.isdigit():
        return Canonical(host=authority, port=None, rest=rest)
    return Canonical(host=host, port=int(port), rest=rest)


def _url_prefixes(asked: Canonical, match: Match) -> list[str]:
    host = f"{keys.URL}{keys.escape(asked.host)}"
    if match == "exact":
        return [f"{keys.URL}{keys.key_text(asked.surt)}{keys.END}"]
    if match == "prefix":
        return [f"{keys.URL}{keys.head(keys.escape(asked.surt))}"]
    if match == "host":  # any port: `)` sorts before `:`
        return [f"{host})", f"{host}:"]
    return [f"{host})", f"{host},", f"{host}:"]  # domain: and subdomains; in key order


def _matches(found: Canonical, asked: Canonical, match: Match) -> bool:
    if match == "exact":
        return found.surt == asked.surt
    if match == "prefix":
        return found.surt.startswith(asked.surt)
    if match == "host":
        return found.host == asked.host
    return found.host == asked.host or found.host.startswith(f"{asked.host},")


def _after(start: str, prefix: str) -> str:
    """What to list after: nothing before the prefix. Never the prefix itself, nor any
    "folder" of keys: SeaweedFS then skips every key under it (and lists in folder
    order, `a/1` before `a#1`, which every cursor here resumes consistently: each is an
    entry's key or a name no key has, past a folder's last entry)."""
    return start if start > prefix else ""


def _group(key: str) -> str:
    """An entry's key without its version: the same for every version of a capture."""
    return key.rpartition("/")[0]


def _within(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)


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


def _change(change: keys.Change) -> Change:
    return Change(
        id=change.id,
        version=change.version,
        at=rfc3339(change.at),
        received_at=rfc3339(change.received),
        cursor=encode_cursor(change.key),
    )
