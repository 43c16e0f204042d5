"""Faults at the storage port: no partial document is ever visible, retries recover.

The faults are injected by wrapping the real S3 adapter (a real server cannot be made
to fail exactly between the two writes of one request); everything else is real.
"""

from __future__ import annotations

import asyncio
import hashlib

import msgspec

from service.errors import StorageUnavailable
from service.storage.s3 import S3ObjectStore, S3Settings
from service.web.typedefs import SERVICES
from tests.conftest import all_keys


class FailingRecordWrites:
    """The real store, except that the next `failures` record writes fail as if S3
    had become unreachable after the original was stored."""

    def __init__(self, inner: S3ObjectStore, failures: int = 1) -> None:
        self.inner = inner
        self.failures = failures

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        if key.startswith("records/") and self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("injected fault: connection reset")
        return await self.inner.put_if_absent(key, data, sha256=sha256, content_type=content_type)

    async def get(self, key: str) -> bytes:
        return await self.inner.get(key)

    async def list_keys(self, prefix: str) -> list[str]:
        return await self.inner.list_keys(prefix)

    async def check(self) -> None:
        await self.inner.check()

    def __getattr__(self, name: str) -> object:  # the bulk operations, unchanged
        return getattr(self.inner, name)


async def test_fault_after_the_original_leaves_no_document_and_retry_succeeds(
    make_client, store
) -> None:
    client = await make_client(FailingRecordWrites(store))
    body = b"A crash between the two writes."
    failed = await client.post("/v1/documents", data=body, headers={"Content-Type": "text/plain"})
    problem = await failed.json(content_type=None)
    assert failed.status == 503
    assert problem["type"] == "/problems/storage-unavailable"
    assert failed.headers["Retry-After"]
    keys = await all_keys(store)
    assert [key for key in keys if key.startswith("records/")] == []
    assert len([key for key in keys if key.startswith("originals/")]) == 1  # unreferenced

    retried = await client.post("/v1/documents", data=body, headers={"Content-Type": "text/plain"})
    assert retried.status == 201
    document_id = (await retried.json())["id"]
    original = await client.get(f"/v1/documents/{document_id}/original")
    assert await original.read() == body
    keys = await all_keys(store)
    assert len([key for key in keys if key.startswith("originals/")]) == 1  # reused


async def test_unreachable_storage_is_503_and_not_ready(
    make_client, s3_settings: S3Settings
) -> None:
    nowhere = msgspec.structs.replace(
        s3_settings, endpoint="http://127.0.0.1:9", timeout_seconds=1.0
    )
    store = S3ObjectStore(nowhere)
    try:
        client = await make_client(store)
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json(content_type=None))["type"] == "/problems/storage-unavailable"
        posted = await client.post(
            "/v1/documents", data=b"x", headers={"Content-Type": "text/plain"}
        )
        assert posted.status == 503
        assert posted.headers["Retry-After"]
        read = await client.get("/v1/documents/" + "a" * 32)
        assert read.status == 503
    finally:
        await store.close()


class RefusingWrites:
    """The real store, except that writes fail while `refusing` is set, while the bucket
    still answers (SeaweedFS does that for a moment after a restart, too briefly to test)."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner
        self.refusing = True

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        if self.refusing:
            raise StorageUnavailable("injected fault: volume not writable")
        return await self.inner.put_if_absent(key, data, sha256=sha256, content_type=content_type)

    def __getattr__(self, name: str) -> object:  # reads and checks, unchanged
        return getattr(self.inner, name)


async def test_ready_means_writes_work_after_a_write_failed(make_client, store) -> None:
    refusing = RefusingWrites(store)
    client = await make_client(refusing)
    assert (await client.get("/readyz")).status == 200  # nothing known to fail yet
    text = {"Content-Type": "text/plain"}
    assert (await client.post("/v1/documents", data=b"Refused.", headers=text)).status == 503
    not_ready = await client.get("/readyz")
    assert not_ready.status == 503  # the bucket answers, but writes fail
    assert (await not_ready.json(content_type=None))["type"] == "/problems/storage-unavailable"
    refusing.refusing = False
    await until_ready(client)  # its probe write succeeded (readiness is reused a second)
    probes = [key for key in await all_keys(store) if key.startswith("_vellum/readiness/")]
    assert len(probes) == 1
    assert (await client.post("/v1/documents", data=b"Taken.", headers=text)).status == 201
    assert (await client.get("/readyz")).status == 200
    # the probe, one original, one record, its head and its five index entries (feed,
    # four bands)
    assert len(await all_keys(store)) == 9


async def test_a_corrupted_original_is_an_integrity_error_not_wrong_bytes(client, store) -> None:
    """The original's bytes rot in storage (its stored digest stays): the read refuses
    them rather than serving them."""
    posted = await client.post(
        "/v1/documents", data=b"Good bytes.", headers={"Content-Type": "text/plain"}
    )
    document_id = (await posted.json())["id"]
    key = "originals/sha256/" + hashlib.sha256(b"Good bytes.").hexdigest()
    store.damage(key, b"Evil bytes.")
    response = await client.get(f"/v1/documents/{document_id}/original")
    assert response.status == 500
    assert (await response.json(content_type=None))["type"] == "/problems/integrity-error"
    assert b"Evil" not in await response.read()


class CountingRefusals(RefusingWrites):
    """RefusingWrites that also refuses replaces and counts the calls probes make."""

    def __init__(self, inner: S3ObjectStore) -> None:
        super().__init__(inner)
        self.calls = 0

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        self.calls += 1
        return await super().put_if_absent(key, data, sha256=sha256, content_type=content_type)

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        self.calls += 1
        if self.refusing:
            raise StorageUnavailable("injected fault: volume not writable")
        return await self.inner.replace(
            key, data, sha256=sha256, content_type=content_type, if_match=if_match
        )

    async def check(self) -> None:
        self.calls += 1
        await self.inner.check()


async def test_a_probe_flood_costs_one_storage_call_and_leaves_one_object(
    make_client, store
) -> None:
    """While writes failed, every /readyz wrote a new probe object, never deleted, and
    each probe was an S3 call of its own."""
    refusing = CountingRefusals(store)
    client = await make_client(refusing)
    text = {"Content-Type": "text/plain"}
    assert (await client.post("/v1/documents", data=b"Refused.", headers=text)).status == 503
    refusing.calls = 0
    flood = await asyncio.gather(*(client.get("/readyz") for _ in range(100)))
    assert {answer.status for answer in flood} == {503}
    assert refusing.calls == 1
    refusing.refusing = False
    for _ in range(3):  # three rounds of probes, each a real write once the cache expires
        await until_ready(client)
        client.app[SERVICES].store.writes_failing = True  # as if a write had failed again
    assert await all_keys(store) == ["_vellum/readiness/probe"]


async def until_ready(client) -> None:  # type: ignore[no-untyped-def]
    """Until /readyz answers 200, with a generous bound as a hang guard only."""
    async with asyncio.timeout(30):
        while True:
            if (await client.get("/readyz")).status == 200:
                return
            await asyncio.sleep(0.1)
