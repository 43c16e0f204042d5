"""A document's head (`records/<id>/latest.json`): a read of the latest version is one S3
GET (SPEC §10), correct while another process writes a new version, and rebuilt from the
versions by `vellum verify` and `vellum reindex` when missing or behind."""

from __future__ import annotations

import asyncio
import hashlib
import sys

import msgspec
import pytest

from service import ids
from service.analysis import Analyzer
from service.archive import Archive
from service.errors import StorageUnavailable
from service.finding.entries import IndexWriter
from service.finding.maintenance import reindex
from service.ingest import Arrival, Ingestor
from service.jobs.verify import verify
from service.media import resolve_charset
from service.storage.s3 import S3ObjectStore, S3Settings
from service.submission import from_text_body
from service.types import Record, record_decoder, record_encoder
from tests.servers import clean_environment, s3_environment
from tests.test_metrics import scrape

pytestmark = pytest.mark.usefixtures("s3_settings")  # the real server: `store` is S3
OPERATIONS = "vellum_storage_operations_total"


async def ingest(archive: Archive, text: str) -> Record:
    submission = from_text_body(text.encode(), resolve_charset("utf-8"))
    return (await Ingestor(archive, Analyzer(0)).ingest(submission, Arrival(channel="http"))).record


def next_version(record: Record) -> Record:
    """The record's next version, as a reprocessing would write it."""
    return msgspec.structs.replace(record, version=record.version + 1)


async def put_version_only(store: S3ObjectStore, record: Record) -> bytes:
    """Create a version and leave the head alone, as a writer that died in between."""
    data = record_encoder.encode(record)
    key = ids.record_key(record.id, record.version)
    sha256 = hashlib.sha256(data).digest()
    assert await store.put_if_absent(key, data, sha256=sha256, content_type="application/json")
    return data


def calls(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[str, float]:
    """Storage calls by operation (all outcomes)."""
    found: dict[str, float] = {}
    for (name, labels), count in samples.items():
        if name == OPERATIONS:
            operation = dict(labels)["operation"]
            found[operation] = found.get(operation, 0.0) + count
    return found


async def test_a_latest_read_is_one_get_and_no_listing(make_client, store) -> None:
    client = await make_client(store)
    created = await client.post("/v1/documents", json={"text": "Read me in one call."})
    document_id = (await created.json())["id"]
    before = calls(await scrape(client))
    response = await client.get(f"/v1/documents/{document_id}")
    after = calls(await scrape(client))
    assert response.status == 200
    assert await response.read() == await store.get(ids.record_key(document_id, 1))
    assert {op: after[op] - before.get(op, 0.0) for op in after if after[op] != before.get(op)} == {
        "get": 1
    }


async def test_reads_during_another_process_reprocessing_see_old_or_new(
    make_client, store, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of an older normalizer, reprocessed by `vellum reprocess --all` in its own
    process while this one reads them: every read is a whole version, 1 or 2, and once
    the writer is done every read is its version 2."""
    archive = Archive(store)
    monkeypatch.setattr("service.ingest.NORMALIZER_VERSION", "0.1")
    records = [await ingest(archive, f"Article number {n} of the batch.") for n in range(24)]
    monkeypatch.undo()
    client = await make_client(store)
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "reprocess",
        "--all",
        env={**clean_environment(), **s3_environment(s3_settings)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    seen: list[tuple[int, int]] = []
    while writer.returncode is None:
        for record in records:
            response = await client.get(f"/v1/documents/{record.id}")
            data = await response.read()
            version = record_decoder.decode(data).version if response.status == 200 else 0
            seen.append((response.status, version))
            assert data == await store.get(ids.record_key(record.id, version))
        await asyncio.sleep(0)  # lets the child's exit be noticed
    assert await writer.wait() == 0
    assert {status for status, _ in seen} == {200}
    assert {version for _, version in seen} <= {1, 2}
    for record in records:
        assert (await archive.record(record.id)).version == 2


async def test_a_writer_reads_its_own_version_and_heads_never_move_back(store) -> None:
    archive = Archive(store)
    first = await ingest(archive, "A document reprocessed twice, concurrently.")
    second, third = next_version(first), next_version(next_version(first))
    assert await archive.put_record(second)
    assert (await archive.record(first.id)).version == 2  # the writer's own, at once
    # Two writers move the head at once, from version 2: the newer always wins.
    await put_version_only(store, third)
    for _ in range(5):
        await archive.advance_head(first.id, 2, record_encoder.encode(second))
        await asyncio.gather(
            archive.advance_head(first.id, 3, record_encoder.encode(third)),
            archive.advance_head(first.id, 2, record_encoder.encode(second)),
        )
        assert (await archive.stored_record(first.id)).version == 3
    assert not await archive.advance_head(first.id, 1, record_encoder.encode(first))
    assert (await archive.stored_record(first.id)).version == 3


async def test_a_missing_or_stale_head_falls_back_and_verify_and_reindex_rewrite_it(
    make_client, store: S3ObjectStore
) -> None:
    archive = Archive(store)
    record = await ingest(archive, "This document loses its head.")
    version_1 = await store.get(ids.record_key(record.id, 1))
    head = ids.latest_key(record.id)

    await store.delete(head)  # as a document written before heads existed
    client = await make_client(store)
    assert await (await client.get(f"/v1/documents/{record.id}")).read() == version_1
    report = await verify(store, settle_seconds=0.1)
    assert [(f.kind, f.key) for f in report.findings] == [("stale-index", head)]
    assert report.findings[0].detail.startswith("missing")
    assert await store.get(head) == version_1
    assert (await verify(store, settle_seconds=0.1)).findings == []

    # A version whose writer died before it moved the head: the head is behind.
    newer = await put_version_only(store, next_version(record))
    report = await verify(store, settle_seconds=0.1)
    assert [(f.kind, f.key) for f in report.findings] == [("stale-index", head)]
    assert report.findings[0].detail.startswith("holds version 1, the newest is 2")
    assert await (await client.get(f"/v1/documents/{record.id}")).read() == newer
    assert report.records == 2  # heads are no versions

    newest = await put_version_only(store, next_version(next_version(record)))
    assert (await reindex(IndexWriter(archive))).heads == 1
    assert await store.get(head) == newest
    assert (await reindex(IndexWriter(archive))).heads == 0


class FailingHeads:
    """The real store, but for heads, whose creation fails as if S3 went away right after
    the version was written."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        if key.endswith("/" + ids.LATEST_NAME):
            raise StorageUnavailable("injected fault: connection reset")
        return await self.inner.put_if_absent(key, data, sha256=sha256, content_type=content_type)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_a_document_whose_head_was_not_written_reads_whole(make_client, store) -> None:
    """The version makes the document visible; without its head it reads the same."""
    failing = await make_client(FailingHeads(store))
    assert (await failing.post("/v1/documents", json={"text": "Headless."})).status == 503
    [version_key] = await store.list_keys("records/")
    assert ids.is_version_key(version_key)
    client = await make_client(store)
    document_id = version_key.split("/")[1]
    response = await client.get(f"/v1/documents/{document_id}")
    assert await response.read() == await store.get(version_key)
    report = await verify(store, settle_seconds=0.1)
    assert [(f.kind, f.key) for f in report.findings] == [
        ("stale-index", ids.latest_key(document_id))
    ]
    assert await store.get(ids.latest_key(document_id)) == await store.get(version_key)
