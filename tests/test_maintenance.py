"""`vellum verify` finds corruption and loss; `vellum reprocess` adds versions, keeps old ones."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import boto3
import msgspec

import service.storage.memory
from service import ids
from service.analysis import Analyzer
from service.archive import Archive
from service.errors import StorageError
from service.finding.entries import IndexWriter
from service.finding.maintenance import marked_version_keys, reindex, stale_entries
from service.ingest import Arrival, Ingestor
from service.jobs.reprocess import document_ids, reprocess
from service.jobs.verify import verify
from service.media import resolve_charset
from service.storage.memory import MemoryStore
from service.storage.s3 import S3Settings
from service.submission import from_text_body
from service.types import Record, record_decoder
from tests.servers import run_vellum, s3_environment
from tests.test_faults import FailingRecordWrites

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "records" / "vellum.article-1.json"
SEED = Path(__file__).resolve().parents[1] / "seeds" / "01-nested-quotes.txt"


def raw_client(settings: S3Settings):  # type: ignore[no-untyped-def]
    """A plain boto3 client, to damage objects the way bit rot or an operator would."""
    return boto3.client(
        "s3",
        endpoint_url=settings.endpoint,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name="us-east-1",
    )


def flip_a_bit(settings: S3Settings, key: str) -> None:
    """Rewrite the object with one bit flipped, keeping the digest stored with it."""
    client = raw_client(settings)
    full = f"{settings.prefix}/{key}"
    head = client.head_object(Bucket=settings.bucket, Key=full)
    data = bytearray(client.get_object(Bucket=settings.bucket, Key=full)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=settings.bucket, Key=full, Body=bytes(data), Metadata=head["Metadata"])


async def post(client, text: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    response = await client.post("/v1/documents", json={"text": text})
    assert response.status == 201
    record: dict[str, object] = await (
        await client.get(f"/v1/documents/{(await response.json())['id']}")
    ).json()
    return record


class StoredWhileListing(MemoryStore):
    """An archive that a document reaches while verify runs: stored (original, then
    record, as ingest does) right after verify's first listing (of the records) ends."""

    def __init__(self) -> None:
        super().__init__()
        self.arrival: Callable[[], Awaitable[object]] | None = None

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        keys = await super().list_page(prefix, start_after=start_after, limit=limit)
        if not keys and self.arrival is not None:
            arrival, self.arrival = self.arrival, None
            await arrival()
        return keys


async def ingest_texts(store: MemoryStore, texts: list[str]) -> list[Record]:
    """The texts stored as documents (HTTP ingests, analysis in this process)."""
    made = []
    async with Analyzer(0) as analyzer:
        ingestor = Ingestor(Archive(store), analyzer)
        for text in texts:
            submission = from_text_body(text.encode(), resolve_charset("utf-8"))
            made.append((await ingestor.ingest(submission, Arrival(channel="http"))).record)
    return made


async def test_a_document_stored_while_verify_runs_is_no_finding() -> None:
    """Stored between verify's two listings, a document was reported `missing` (listed
    record, unlisted original) or `unreferenced` (listed original, unlisted record)."""
    store = StoredWhileListing()
    async with Analyzer(0) as analyzer:
        ingestor = Ingestor(Archive(store), analyzer)

        async def ingest(text: bytes) -> object:
            submission = from_text_body(text, resolve_charset("utf-8"))
            return await ingestor.ingest(submission, Arrival(channel="http"))

        await ingest(b"Stored before verify began.")
        store.arrival = lambda: ingest(b"Stored right after the first listing.")
        report = await verify(store)
    assert store.arrival is None, "the document arrived while verify ran"
    assert report.findings == []


class RefusingOne(MemoryStore):
    """An archive where one object cannot be read (an access policy refuses it)."""

    refused: str | None = None

    async def get(self, key: str) -> bytes:
        if key == self.refused:
            raise StorageError(f"S3 GetObject failed: AccessDenied (HTTP 403) for {key}")
        return await super().get(key)


async def test_verify_reports_an_unreadable_object_and_goes_on() -> None:
    """One object that could not be read stopped verify with a traceback; now it is an
    `unreadable` finding and the others are checked."""
    store = RefusingOne()
    await ingest_texts(store, ["First.", "Second.", "Third."])
    records = [key for key in await store.list_keys("records/") if ids.is_version_key(key)]
    store.refused = records[1]
    report = await verify(store, concurrency=2)
    assert (report.originals, report.records) == (3, 3)
    unreadable, unreferenced = report.findings  # what the record names is not known
    assert (unreadable.kind, unreadable.key) == ("unreadable", records[1])
    assert "AccessDenied" in unreadable.detail
    assert unreferenced.kind == "unreferenced"


async def test_verify_finds_flipped_bits_lost_and_unreferenced_objects(
    make_client, store, s3_settings
) -> None:
    client = await make_client(store)
    healthy = await post(client, "This document stays healthy.")
    rotten_original = await post(client, "This original will rot.")
    rotten_record = await post(client, "This record will rot.")
    lost = await post(client, "This original will be deleted.")
    failing = await make_client(FailingRecordWrites(store))
    assert (await failing.post("/v1/documents", json={"text": "Half written."})).status == 503

    half_written = "originals/sha256/" + hashlib.sha256(b"Half written.").hexdigest()
    # Only the half-written document is out of place: its original, and its five index
    # entries (feed, four bands), which verify removes.
    before = await verify(store, settle_seconds=0.1)
    assert (before.findings[0].kind, before.findings[0].key) == ("unreferenced", half_written)
    stale = [f.key for f in before.findings if f.kind == "stale-index"]
    assert len(stale) == len(before.findings) - 1 == 5
    assert not set(stale) & set(await store.list_keys("index/"))
    flip_a_bit(s3_settings, rotten_original["original"]["key"])  # type: ignore[index]
    flip_a_bit(s3_settings, ids.record_key(rotten_record["id"], 1))  # type: ignore[arg-type]
    raw_client(s3_settings).delete_object(
        Bucket=s3_settings.bucket,
        Key=f"{s3_settings.prefix}/{lost['original']['key']}",  # type: ignore[index]
    )

    report = await verify(store, settle_seconds=0.1)
    found = {(finding.kind, finding.key) for finding in report.findings}
    assert found == {
        ("corrupt", rotten_original["original"]["key"]),  # type: ignore[index]
        ("corrupt", ids.record_key(rotten_record["id"], 1)),  # type: ignore[arg-type]
        ("missing", lost["original"]["key"]),  # type: ignore[index]
        ("unreferenced", half_written),
    }
    assert healthy["original"]["key"] not in {key for _, key in found}  # type: ignore[index]
    assert (report.originals, report.records) == (4, 4)

    cli = await asyncio.to_thread(
        run_vellum, "verify", env=s3_environment(s3_settings), timeout=120
    )
    assert cli.returncode == 1
    assert "4 findings" in cli.stdout
    assert f"missing: {lost['original']['key']}" in cli.stdout  # type: ignore[index]
    # Its progress, as plain lines: standard error is not a terminal here.
    assert "verify: 8/8 objects (100%)" in cli.stderr.splitlines()[-1]

    # The rotten record's head, a copy of its bytes, is intact: the latest reads from it.
    flip_a_bit(s3_settings, ids.latest_key(rotten_record["id"]))  # type: ignore[arg-type]
    again = await asyncio.to_thread(
        run_vellum, "reprocess", "--all", env=s3_environment(s3_settings), timeout=120
    )
    assert again.returncode == 1  # neither the rotten head nor its record can be read
    assert "0 new versions, 3 already current, 1 failed" in again.stdout
    assert "reprocess: 4/4 documents (100%)" in again.stderr.splitlines()[-1]


async def test_reprocess_adds_a_version_and_keeps_the_old(store) -> None:
    original = SEED.read_bytes()
    old = msgspec.structs.replace(
        record_decoder.decode(FIXTURE.read_bytes()),
        provenance=msgspec.structs.replace(
            record_decoder.decode(FIXTURE.read_bytes()).provenance, normalizer_version="0.1"
        ),
    )
    archive = Archive(store)
    await archive.put_original(
        original, sha256=hashlib.sha256(original).digest(), media_type="text/plain"
    )
    await archive.put_record(old)
    old_bytes = (await archive.stored_record(old.id, 1)).data

    handled: list[tuple[str, str]] = []
    first = await reprocess(
        archive, Analyzer(0), document_ids(store), on_document=lambda *done: handled.append(done)
    )
    assert (first.written, handled) == (1, [(old.id, "written")])
    assert await archive.versions(old.id) == [1, 2]
    assert (await archive.stored_record(old.id, 1)).data == old_bytes  # untouched
    new = await archive.record(old.id)
    assert new.version == 2
    assert new.provenance.derived_from.previous_version == 1
    assert new.provenance.normalizer_version != "0.1"
    assert new.provenance.received_at == old.provenance.received_at
    assert new.text == old.text

    again = await reprocess(archive, Analyzer(0), [old.id])
    assert (again.written, again.current) == (0, 1)
    assert await archive.versions(old.id) == [1, 2]


async def test_reprocess_reports_a_bad_document_and_goes_on() -> None:
    """One document whose original had rotted stopped `reprocess --all` for every other
    one: now it is reported with why, and the others get their new versions."""
    store = MemoryStore()
    archive = Archive(store)
    old_ids = []
    for n, text in enumerate([b"First article.", b"Second article.", b"Third article."]):
        fixture = record_decoder.decode(FIXTURE.read_bytes())
        sha256 = hashlib.sha256(text).hexdigest()
        old = msgspec.structs.replace(
            fixture,
            id=ids.document_id(sha256, "utf-8", None),
            original=msgspec.structs.replace(
                fixture.original, sha256=sha256, size=len(text), key=ids.original_key(sha256)
            ),
            provenance=msgspec.structs.replace(fixture.provenance, normalizer_version="0.1"),
        )
        await archive.put_original(text, sha256=bytes.fromhex(sha256), media_type="text/plain")
        await archive.put_record(old)
        old_ids.append(old.id)
        if n == 1:
            store.damage(old.original.key, b"Rotten bytes.")
    handled: dict[str, str] = {}
    report = await reprocess(
        archive, Analyzer(0), old_ids, concurrency=1, on_document=handled.__setitem__
    )
    rotten = old_ids[1]
    assert report.written == 2
    assert handled == {old_ids[0]: "written", rotten: "failed", old_ids[2]: "written"}
    assert [(failure.id, failure.problem.split(":")[0]) for failure in report.failed] == [
        (rotten, "integrity-error")
    ]
    assert await archive.versions(rotten) == [1]


async def test_a_rotten_record_is_an_integrity_error_not_wrong_bytes(
    make_client, store, s3_settings
) -> None:
    client = await make_client(store)
    record = await post(client, "This record will rot before it is read.")
    flip_a_bit(s3_settings, ids.record_key(record["id"], 1))  # type: ignore[arg-type]
    response = await client.get(f"/v1/documents/{record['id']}?version=1")
    problem = await response.json(content_type=None)
    assert response.status == 500
    assert problem["type"] == "/problems/integrity-error"
    # The latest is served from its head, an intact copy, until that rots too; then the
    # read falls back to the version, which is rotten.
    assert (await client.get(f"/v1/documents/{record['id']}")).status == 200
    flip_a_bit(s3_settings, ids.latest_key(record["id"]))  # type: ignore[arg-type]
    response = await client.get(f"/v1/documents/{record['id']}")
    assert response.status == 500
    assert (await response.json(content_type=None))["type"] == "/problems/integrity-error"
    scrape = await (await client.get("/metrics")).text()
    assert 'vellum_storage_errors_total{kind="integrity-error",operation="get"} 3.0' in scrape


class CountingPages(MemoryStore):
    """An archive that logs when listing pages and records are read."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def prefix_pages(self, prefix: str):  # type: ignore[no-untyped-def]
        async for page in super().prefix_pages(prefix):
            self.events.append("page")
            yield page

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        self.events.append("key page")
        return await super().list_page(prefix, start_after=start_after, limit=limit)

    async def get(self, key: str) -> bytes:
        if key.startswith("records/"):
            self.events.append("record")
        return await super().get(key)


async def test_reprocess_all_reads_the_listing_as_it_goes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`reprocess --all` listed every document id before reprocessing any (millions of ids
    in memory); now it takes them from the listing a page at a time."""
    monkeypatch.setattr("service.storage.memory.PAGE_KEYS", 2)
    store = CountingPages()
    async with Analyzer(0) as analyzer:
        ingestor = Ingestor(Archive(store), analyzer)
        for n in range(6):
            submission = from_text_body(f"Document {n}.".encode(), resolve_charset("utf-8"))
            await ingestor.ingest(submission, Arrival(channel="http"))
        store.events.clear()
        report = await reprocess(Archive(store), analyzer, document_ids(store), concurrency=1)
    assert report.current == 6
    assert store.events.count("page") == 3
    assert store.events.index("record") < len(store.events) - 1 - store.events[::-1].index("page")


class EveryIdCurrent(Archive):
    """An archive in which any id names one document, already made by this normalizer."""

    def __init__(self, store: MemoryStore, latest: Record) -> None:
        super().__init__(store)
        self.latest = latest

    async def record(self, document_id: str, version: int | None = None) -> Record:
        return self.latest


async def test_a_reprocess_report_keeps_counts_not_ids() -> None:
    """`reprocess` kept the id of every document it handled until its end (printed then):
    its memory grew with the archive. Now the report holds counts, and the failed only."""
    store = MemoryStore()
    async with Analyzer(0) as analyzer:
        submission = from_text_body(b"One document.", resolve_charset("utf-8"))
        made = await Ingestor(Archive(store), analyzer).ingest(submission, Arrival(channel="http"))
        latest = made.record
        handled = 0

        def count(document_id: str, outcome: str) -> None:
            nonlocal handled
            handled += 1

        ids_ = (f"{n:064x}" for n in range(10_000))
        report = await reprocess(EveryIdCurrent(store, latest), analyzer, ids_, on_document=count)
    assert (report.written, report.current, report.failed, handled) == (0, 10_000, [], 10_000)
    assert len(msgspec.json.encode(report)) < 100  # before: 10,000 ids of 64 characters


async def test_reindex_reads_the_listing_as_it_goes_and_skips_other_keys(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`reindex` listed every key under records/ and started a task per record version
    before indexing any; now it takes them a listing page at a time. A key under records/
    that is no version (a document's `latest.json`) is not read as one."""
    monkeypatch.setattr("service.storage.memory.PAGE_KEYS", 2)
    store = CountingPages()
    await ingest_texts(store, [f"Document {n}." for n in range(5)])  # and their heads
    store.events.clear()
    report = await reindex(IndexWriter(Archive(store)), concurrency=1)
    assert (report.records, report.created, report.unreadable) == (5, 0, [])
    pages = [n for n, event in enumerate(store.events) if event == "key page"]
    assert len(pages) >= 5  # 10 keys (5 versions, 5 heads), 2 a page
    assert store.events.index("record") < pages[-1]
    assert store.events.count("record") == 5  # latest.json unread


async def test_verify_reads_the_listings_as_it_goes_and_skips_other_keys(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`verify` listed every record and original key before checking any (millions of keys
    in memory); now it checks them as the listing pages come, remembering what it must on
    disk, and still finds what is wrong. A key under records/ that is no version (a
    document's `latest.json`) is not checked as a record."""
    monkeypatch.setattr("service.storage.memory.PAGE_KEYS", 2)
    store = CountingPages()
    archive = Archive(store)
    made = []
    async with Analyzer(0) as analyzer:
        ingestor = Ingestor(archive, analyzer)
        for n in range(6):
            submission = from_text_body(f"Document {n}.".encode(), resolve_charset("utf-8"))
            made.append((await ingestor.ingest(submission, Arrival(channel="http"))).record)
    other = f"records/{made[0].id}/latest.json"
    await store.put_if_absent(other, b"{}", sha256=hashlib.sha256(b"{}").digest(), content_type="x")
    lost, rotten, orphan = made[1].original.key, ids.record_key(made[2].id, 1), made[3]
    await store.delete(lost)
    store.damage(rotten, b"rotten")
    await store.delete(ids.record_key(orphan.id, 1))
    store.events.clear()
    report = await verify(store, settle_seconds=0.01)
    found = {
        (finding.kind, finding.key) for finding in report.findings if finding.kind != "stale-index"
    }
    assert found == {
        ("missing", lost),
        ("corrupt", rotten),
        ("unreferenced", made[2].original.key),  # what the rotten record names is not known
        ("unreferenced", orphan.original.key),
    }
    assert (report.records, report.originals) == (5, 5)
    pages = [n for n, event in enumerate(store.events) if event == "key page"]
    assert store.events.index("record") < pages[-1]  # checked while the listing went on


async def test_each_documents_newest_version_is_told_across_listing_pages(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """reindex and verify move heads from a streamed listing: a version is its document's
    newest when the next version key is another document's, also across a page break."""

    monkeypatch.setattr(service.storage.memory, "PAGE_KEYS", 2)
    store = MemoryStore()
    made = [
        ids.record_key("a" * 32, 1),
        ids.record_key("a" * 32, 2),
        ids.latest_key("a" * 32),
        ids.record_key("b" * 32, 1),
        ids.record_key("c" * 32, 1),
        ids.record_key("c" * 32, 2),
        ids.record_key("c" * 32, 3),
    ]
    for key in made:
        await store.put_if_absent(
            key, b"{}", sha256=hashlib.sha256(b"{}").digest(), content_type="application/json"
        )
    marked = [item async for item in marked_version_keys(store)]
    assert marked == [
        (ids.record_key("a" * 32, 1), False),
        (ids.record_key("a" * 32, 2), True),
        (ids.record_key("b" * 32, 1), True),
        (ids.record_key("c" * 32, 1), False),
        (ids.record_key("c" * 32, 2), False),
        (ids.record_key("c" * 32, 3), True),
    ]


class NoWholeListing(MemoryStore):
    """A store whose `list_keys` (every key under a prefix, at once) must not be used."""

    async def list_keys(self, prefix: str) -> list[str]:
        raise AssertionError(f"listed every key under {prefix!r} at once")


async def test_stale_entries_are_found_from_a_listing_read_a_page_at_a_time(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """verify's index check listed all of index/ and started a task per entry; now it reads
    a page at a time with a few takers and keeps only what looks stale."""
    monkeypatch.setattr("service.storage.memory.PAGE_KEYS", 3)
    store = NoWholeListing()
    gone = (await ingest_texts(store, [f"Entry {n}." for n in range(4)]))[-1]
    await store.delete(ids.record_key(gone.id, gone.version))  # its entries now bear nothing out
    stale = await stale_entries(store, settle_seconds=0.0)
    assert stale
    assert {gone.id in entry.key for entry in stale} == {True}
    assert [entry.key for entry in stale] == sorted(entry.key for entry in stale)
    left = set(await MemoryStore.list_keys(store, "index/"))  # the test may list at once
    assert not {entry.key for entry in stale} & left
    assert await stale_entries(store, settle_seconds=0.0) == []
