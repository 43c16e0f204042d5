"""The change feed's entries: one path segment after `index/changes/`, and archives
written before 2026-12-07 with the nested form, which the feed reads in order, every
version once, before, while and after `vellum reindex` replaces it (docs/format.md,
"Indexes")."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from service.analysis import Analyzer
from service.archive import Archive
from service.finding import keys
from service.finding.entries import IndexWriter, entry_keys
from service.finding.lookups import Finder
from service.finding.maintenance import reindex, stale_entries
from service.ingest import Ingestor
from service.jobs.verify import verify
from service.media import TEXT_PLAIN
from service.storage.port import ObjectStore
from service.types import Record
from tests.test_changes import ingest, later, traverse

ID = "a" * 32
SHA = "0f" * 32
AT = datetime(2026, 12, 7, 9, 30, 1, 250, tzinfo=UTC)
RECEIVED = datetime(2026, 12, 6, 8, 0, 0, tzinfo=UTC)
_EMPTY = hashlib.sha256(b"").digest()


def nested_key(flat: str) -> str:
    """A feed entry's key as written before 2026-12-07."""
    return keys.CHANGES + flat.removeprefix(keys.CHANGES).replace("_", "/")


def test_a_feed_entry_is_one_segment_and_both_layouts_parse() -> None:
    flat = keys.change_key(AT, ID, 7, RECEIVED, SHA)
    at, received = "20261207T093001.000250Z", "20261206T080000.000000Z"
    assert flat == f"index/changes/{at}_{ID}_000000007_{received}_{SHA}"
    nested = f"index/changes/{at}/{ID}/000000007/{received}/{SHA}"
    assert nested_key(flat) == nested
    assert keys.parse_change(flat) == keys.Change(flat, AT, ID, 7, RECEIVED, SHA)
    assert keys.parse_change(nested) == keys.Change(nested, AT, ID, 7, RECEIVED, SHA)
    assert keys.flat_key(nested) == keys.flat_key(flat) == flat
    # a folder `<at>` and what it holds sort before the flat entries of that `at`
    assert nested < flat < keys.change_key(AT, "b" * 32, 1, RECEIVED, SHA)


async def put(store: ObjectStore, key: str) -> None:
    await store.put_if_absent(key, b"", sha256=_EMPTY, content_type=TEXT_PLAIN)


async def nest(store: ObjectStore, record: Record) -> str:
    """The record's feed entry rewritten in the nested form; its key."""
    flat = entry_keys(record)[0]
    await store.delete(flat)
    await put(store, nested_key(flat))
    return nested_key(flat)


async def follow(finder: Finder, after: str) -> list[tuple[str, int]]:
    """The feed after the cursor `after`, a version a page, until a page is empty."""
    seen: list[tuple[str, int]] = []
    while page := await finder.changes(after, 1):
        if not page.items:
            return seen
        seen += [(item.id, item.version) for item in page.items]
        after = page.next
    return seen


async def test_the_feed_reads_nested_entries_in_order_while_reindex_replaces_them_on_real_s3(  # type: ignore[no-untyped-def]
    store, s3_settings
) -> None:
    """Every version once, in order, a page of one at a time, in an archive of nested
    entries, then of nested and flat twins (reindex half done), then of flat entries only;
    a cursor given out on the nested archive resumes at the next version in each; reindex
    leaves no folder and keeps a nested entry whose record does not exist for verify."""
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    records = [(await ingest(ingestor, f"Layout story {n}.")).record for n in range(4)]
    versions = [(record.id, 1) for record in records]
    nested = [await nest(store, record) for record in records[:3]]  # the last stays flat
    finder = Finder(archive, clock=later())
    page = await finder.changes(limit=4)
    assert [(item.id, item.version) for item in page.items] == versions
    cursors = [item.cursor for item in page.items]
    assert await traverse(finder, limit=1) == versions
    assert (await verify(store, settle_seconds=0.0)).findings == []

    await IndexWriter(archive).put_entries([entry_keys(r)[0] for r in records[:2]])  # twins
    assert len(await store.list_keys(keys.CHANGES)) == 6
    for limit in (1, 2, 3):
        assert await traverse(finder, limit=limit) == versions
    for n, cursor in enumerate(cursors):
        assert await follow(finder, cursor) == versions[n + 1 :]

    orphan = nested_key(keys.change_key(AT, "b" * 32, 1, RECEIVED, SHA))  # of no record
    await put(store, orphan)
    report = await reindex(IndexWriter(archive))
    assert (report.created, report.removed) == (1, 3)  # the third's flat entry; the nested
    left = await store.list_keys(keys.CHANGES)
    assert left == sorted([orphan, *(entry_keys(record)[0] for record in records)])
    assert not set(nested) & set(left)
    assert await store.list_prefixes(keys.CHANGES) == [f"{keys.CHANGES}{orphan.split('/')[2]}/"]
    assert await traverse(finder, limit=1) == versions
    for n, cursor in enumerate(cursors):  # the keys they name are gone, and their folders
        assert await follow(finder, cursor) == versions[n + 1 :]
    assert (await reindex(IndexWriter(archive))).removed == 0
    assert [entry.key for entry in await stale_entries(store, settle_seconds=0.0)] == [orphan]


async def test_twins_of_one_at_are_delivered_once_on_real_s3(  # type: ignore[no-untyped-def]
    store, s3_settings
) -> None:
    """Versions whose writes began in one microsecond: their nested entries share a
    folder, listed before all their flat twins; a consumer paging one at a time, or with
    a cursor inside that folder, gets each once, and the flat-only entry after them."""
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    records = [(await ingest(ingestor, f"Same instant {n}.")).record for n in range(4)]
    records.sort(key=lambda record: record.id)
    flats = [
        keys.change_key(AT, r.id, 1, RECEIVED, keys.parse_change(entry_keys(r)[0]).record_sha256)
        for r in records
    ]
    for record, flat in zip(records, flats, strict=True):
        await store.delete(entry_keys(record)[0])
        await put(store, flat)
        if record is not records[-1]:  # the last has only its flat entry
            await put(store, nested_key(flat))
    listed = await store.list_keys(keys.CHANGES)
    assert listed == [*(nested_key(flat) for flat in flats[:3]), *flats]  # SeaweedFS's order
    versions = [(record.id, 1) for record in records]
    finder = Finder(archive, clock=later())
    for limit in (1, 2, 3, 4):
        assert await traverse(finder, limit=limit) == versions
    first = await finder.changes(limit=1)
    assert await follow(finder, first.next) == versions[1:]
