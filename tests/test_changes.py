"""The change feed (SPEC §9): every record version once, in order of `at`, only once older
than the settle window; and what a write that fails between its entries and its record
leaves (lookups skip it, verify removes it, a retry completes the document)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

from service.analysis import Analyzer
from service.archive import Archive
from service.config import Config
from service.errors import StorageUnavailable, WriteDeadlinePassed
from service.finding.entries import IndexWriter, entry_keys
from service.finding.lookups import Finder
from service.finding.maintenance import reindex
from service.ingest import Arrival, Ingestor
from service.jobs.reprocess import reprocess
from service.jobs.verify import verify
from service.storage.memory import MemoryStore
from service.submission import from_json_document
from service.timestamps import utc_now
from service.types import record_decoder

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED = Path(__file__).resolve().parents[1] / "seeds" / "01-nested-quotes.txt"


def later(seconds: float = 60):  # type: ignore[no-untyped-def]
    """A clock past the settle window of everything written so far."""
    return lambda: utc_now() + timedelta(seconds=seconds)


async def ingest(ingestor: Ingestor, text: str, **source: str):  # type: ignore[no-untyped-def]
    body = msgspec.json.encode({"text": text, "source": source})
    return await ingestor.ingest(
        from_json_document(body, max_metadata_bytes=65536), Arrival(channel="http")
    )


async def traverse(finder: Finder, limit: int = 2) -> list[tuple[str, int]]:
    """The whole feed from the start, following `next` until a page is empty."""
    seen: list[tuple[str, int]] = []
    after = None
    while True:
        page = await finder.changes(after, limit)
        assert page.next
        seen += [(item.id, item.version) for item in page.items]
        if not page.items:
            return seen
        after = page.next


async def test_the_feed_holds_each_version_once_in_order_after_the_settle_window() -> None:
    store = MemoryStore()
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    made = [(await ingest(ingestor, f"Story number {n}.")).record for n in range(5)]
    await ingest(ingestor, "Story number 2.")  # a duplicate: no second version
    unsettled = await Finder(archive).changes()
    assert unsettled.items == []  # too recent: nothing yet
    assert unsettled.next  # and a cursor all the same
    finder = Finder(archive, clock=later())
    assert await traverse(finder) == [(record.id, 1) for record in made]
    page = await finder.changes(limit=5)
    assert [item.at for item in page.items] == [r.provenance.received_at for r in made]
    assert [item.received_at for item in page.items] == [r.provenance.received_at for r in made]
    resumed = await finder.changes(page.items[2].cursor, limit=5)
    assert [item.id for item in resumed.items] == [r.id for r in made[3:]]
    empty = await finder.changes(page.next)
    assert (empty.items, empty.next) == ([], page.next)


async def test_a_reprocess_adds_its_versions_at_the_time_it_wrote_them() -> None:
    store = MemoryStore()
    archive = Archive(store)
    old = record_decoder.decode((FIXTURES / "records" / "vellum.article-1.json").read_bytes())
    old = msgspec.structs.replace(
        old, provenance=msgspec.structs.replace(old.provenance, normalizer_version="0.1")
    )
    original = SEED.read_bytes()
    await archive.put_original(original, sha256=hashlib.sha256(original).digest(), media_type="t")
    await archive.put_record(old)  # archived before the indexes existed
    assert (await reindex(IndexWriter(archive))).created == 5  # feed, four bands
    started = utc_now()
    assert (await reprocess(archive, Analyzer(0), [old.id])).written == 1
    finder = Finder(archive, clock=later())
    page = await finder.changes()
    assert [(item.id, item.version) for item in page.items] == [(old.id, 1), (old.id, 2)]
    assert page.items[0].at == old.provenance.received_at
    assert page.items[1].at >= started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert page.items[1].received_at == old.provenance.received_at
    assert (await reindex(IndexWriter(archive))).created == 0  # idempotent


async def test_bad_feed_parameters_are_400(client) -> None:  # type: ignore[no-untyped-def]
    for query, parameter in (({"after": "nonsense"}, "after"), ({"limit": "0"}, "limit")):
        response = await client.get("/v1/changes", params=query)
        assert response.status == 400
        assert (await response.json(content_type=None))["parameter"] == parameter
    response = await client.get("/v1/changes")
    assert response.status == 200
    assert (await response.json())["next"]


async def test_the_feed_over_http_after_its_settle_window(make_client, store) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(store, Config(analysis_processes=0, changes_settle_seconds=0.3))
    ids = []
    for n in range(3):
        response = await client.post("/v1/documents", json={"text": f"Feed {n}."})
        ids.append((await response.json())["id"])
    await asyncio.sleep(0.4)
    page = await (await client.get("/v1/changes", params={"limit": "2"})).json()
    assert [item["id"] for item in page["items"]] == ids[:2]
    rest = await (await client.get("/v1/changes", params={"after": page["next"]})).json()
    assert [item["id"] for item in rest["items"]] == ids[2:]
    assert set(rest["items"][0]) == {"id", "version", "at", "received_at", "cursor"}


class FailingRecords(MemoryStore):
    """The in-memory store, except that record writes fail while `failing` (a crash
    between a write's index entries and its record) or take `delay` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.entry_delay = 0.0

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        if key.startswith("records/") and self.failing:
            raise StorageUnavailable("injected fault: connection reset")
        if key.startswith("index/"):
            await asyncio.sleep(self.entry_delay)
        return await super().put_if_absent(key, data, sha256=sha256, content_type=content_type)


SOURCE = {"url": "http://example.com/crash", "external_id": "crash-1"}
TEXT = (
    "A write that fails between its index entries and its record leaves entries whose "
    "record does not exist; they must never be answered."
)


async def test_entries_of_a_failed_write_are_skipped_removed_by_verify_and_retried() -> None:
    store = FailingRecords()
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    twin = (await ingest(ingestor, TEXT + " (AP)")).record  # a near-duplicate, stored
    store.failing = True
    with pytest.raises(StorageUnavailable):
        await ingest(ingestor, TEXT, **SOURCE)
    assert [key for key in await store.list_keys("records/")] == [
        f"records/{twin.id}/000000001.json",
        f"records/{twin.id}/latest.json",
    ]
    # the twin's, and the failed write's (feed, URL, host, `com`, external id, four bands)
    assert len(await store.list_keys("index/")) == 5 + 9
    finder = Finder(archive, clock=later())
    assert (await finder.by_url(SOURCE["url"])).items == []
    assert (await finder.by_external_id(SOURCE["external_id"])).items == []
    assert await finder.near(twin) == []
    assert await traverse(finder) == [(twin.id, 1)]

    report = await verify(store, settle_seconds=0.01)
    stale = [finding for finding in report.findings if finding.kind == "stale-index"]
    assert len(stale) == 9
    assert all("does not exist" in finding.detail for finding in stale)
    assert len(await store.list_keys("index/")) == 5

    store.failing = False
    retried = (await ingest(ingestor, TEXT, **SOURCE)).record
    assert [item.id for item in (await finder.by_url("example.com/crash")).items] == [retried.id]
    assert [near.id for near in await finder.near(twin)] == [retried.id]
    assert await traverse(finder) == [(twin.id, 1), (retried.id, 1)]
    assert (await verify(store, settle_seconds=0.01)).findings == []


async def test_a_duplicate_removes_its_entries_and_verify_removes_a_crashed_ones() -> None:
    store = FailingRecords()
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0))
    first = (await ingest(ingestor, TEXT, **SOURCE)).record
    kept = await store.list_keys("index/")
    again = await ingest(ingestor, TEXT, **SOURCE)
    assert (again.created, again.record.id) == (False, first.id)
    assert await store.list_keys("index/") == kept
    # A duplicate that crashed before removing its entries: they name a receipt time its
    # record does not have, so no lookup answers them twice, and verify removes them.
    later_copy = msgspec.structs.replace(
        first,
        provenance=msgspec.structs.replace(
            first.provenance,
            received_at="2030-01-01T00:00:00.000000Z",
            began_at="2030-01-01T00:00:00.000000Z",
        ),
    )
    await IndexWriter(archive).put_entries(entry_keys(later_copy))
    finder = Finder(archive, clock=later(10**9))
    assert [item.id for item in (await finder.by_url(SOURCE["url"])).items] == [first.id]
    assert await traverse(finder) == [(first.id, 1)]
    report = await verify(store, settle_seconds=0.01)
    # feed, URL, host, `com`, external id
    assert sorted(f.kind for f in report.findings) == ["stale-index"] * 5
    assert await store.list_keys("index/") == kept


async def test_a_write_past_its_deadline_publishes_nothing() -> None:
    store = FailingRecords()
    store.entry_delay = 0.2
    archive = Archive(store)
    ingestor = Ingestor(archive, Analyzer(0), indexes=IndexWriter(archive, settle_seconds=0.25))
    with pytest.raises(WriteDeadlinePassed):
        await ingest(ingestor, TEXT)
    assert await store.list_keys("records/") == []
