"""The storage port's contract, bulk operations included, held by every adapter: the
in-memory one (the unit tier's storage) and the S3 adapter on a real SeaweedFS."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import urllib.parse

import msgspec
import pytest

from service.errors import (
    IntegrityError,
    ObjectNotFound,
    PayloadTooLarge,
    StorageError,
    StorageUnavailable,
)
from service.storage.memory import MemoryStore
from service.storage.s3 import PART_BYTES, S3ObjectStore, S3Settings, s3_client
from service.storage.s3.transport import S3Error, translate


@pytest.fixture(params=["memory", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each contract test runs once per adapter."""
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("s3_store")


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def test_put_if_absent_creates_once_and_never_overwrites(store) -> None:
    assert await store.put_if_absent(
        "a/1", b"first", sha256=sha(b"first"), content_type="text/plain"
    )
    assert not await store.put_if_absent(
        "a/1", b"second", sha256=sha(b"second"), content_type="text/plain"
    )
    assert await store.get("a/1") == b"first"


async def test_the_server_verifies_the_checksum(store) -> None:
    with pytest.raises(StorageError):
        await store.put_if_absent("a/bad", b"data", sha256=sha(b"other"), content_type="text/plain")
    assert await store.list_keys("a/") == []


async def test_concurrent_creates_of_one_key_have_one_winner(store) -> None:
    results = await asyncio.gather(
        *(
            store.put_if_absent("race", b"x", sha256=sha(b"x"), content_type="text/plain")
            for _ in range(20)
        )
    )
    assert sum(results) == 1


async def test_head_tells_size_kept_digest_and_etag(store) -> None:
    await store.put_if_absent("h/1", b"hello", sha256=sha(b"hello"), content_type="text/plain")
    info = await store.head("h/1")
    assert (info.size, info.sha256) == (5, sha(b"hello").hex())
    assert info.etag
    with pytest.raises(ObjectNotFound):
        await store.head("h/none")


async def test_replace_only_while_the_etag_is_the_one_given(store) -> None:
    await store.put_if_absent("r/1", b"rotten", sha256=sha(b"rotten"), content_type="text/plain")
    first = (await store.head("r/1")).etag
    assert await store.replace(
        "r/1", b"repaired", sha256=sha(b"repaired"), content_type="text/plain", if_match=first
    )
    assert await store.get("r/1") == b"repaired"
    assert (await store.head("r/1")).etag != first
    assert not await store.replace(  # the ETag it was read with is gone: a race lost
        "r/1", b"again", sha256=sha(b"again"), content_type="text/plain", if_match=first
    )
    assert not await store.replace(
        "r/none", b"x", sha256=sha(b"x"), content_type="text/plain", if_match=first
    )
    etag = (await store.head("r/1")).etag
    with pytest.raises(StorageError):
        await store.replace("r/1", b"x", sha256=sha(b"y"), content_type="text/plain", if_match=etag)
    assert await store.get("r/1") == b"repaired"


async def test_a_range_read_pinned_to_an_etag_fails_once_the_object_was_replaced(
    store,
) -> None:
    await store.put_if_absent("p/1", b"before", sha256=sha(b"before"), content_type="text/plain")
    etag = (await store.head("p/1")).etag
    assert await store.get_range("p/1", 0, 3, if_match=etag) == b"bef"
    assert await store.replace(
        "p/1", b"after!", sha256=sha(b"after!"), content_type="text/plain", if_match=etag
    )
    with pytest.raises(IntegrityError, match="replaced"):
        await store.get_range("p/1", 0, 3, if_match=etag)
    assert await store.get_range("p/1", 0, 3) == b"aft"


async def test_missing_key_is_object_not_found(store) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get("nothing/here")
    with pytest.raises(ObjectNotFound):
        await store.size("nothing/here")


async def test_list_keys_and_prefixes(store) -> None:
    for key in ("jobs/b/x", "jobs/a/y", "jobs/a/z", "other"):
        await store.put_if_absent(key, b"", sha256=sha(b""), content_type="text/plain")
    assert await store.list_keys("jobs/") == ["jobs/a/y", "jobs/a/z", "jobs/b/x"]
    assert await store.list_prefixes("jobs/") == ["jobs/a/", "jobs/b/"]


async def chunks_of(data: bytes, size: int):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_upload_streams_parts_and_ranges_read_back(store) -> None:
    data = os.urandom(PART_BYTES * 2 + 12345)
    uploaded = await store.upload(
        "big/input", chunks_of(data, 1 << 20), content_type="application/x-ndjson", limit=len(data)
    )
    assert uploaded.size == len(data)
    assert uploaded.sha256 == sha(data)
    assert await store.size("big/input") == len(data)
    assert (
        await store.get_range("big/input", PART_BYTES - 10, PART_BYTES + 10)
        == data[PART_BYTES - 10 : PART_BYTES + 10]
    )
    assert await store.get_range("big/input", len(data) - 5, len(data) + 100) == data[-5:]


async def test_upload_over_its_limit_leaves_nothing(store) -> None:
    with pytest.raises(PayloadTooLarge):
        await store.upload(
            "big/too-large", chunks_of(b"x" * 5000, 1000), content_type="text/plain", limit=4999
        )
    assert await store.list_keys("big/") == []
    assert await store.open_uploads("big/") == []


async def failing_chunks():  # type: ignore[no-untyped-def]
    yield b"the first part, "
    raise ConnectionResetError("the client went away")


async def test_an_upload_whose_chunks_fail_or_that_is_cancelled_leaves_no_open_upload(
    store,
) -> None:
    with pytest.raises(ConnectionResetError):
        await store.upload("up/failed", failing_chunks(), content_type="text/plain", limit=100)
    release = asyncio.Event()
    task = asyncio.create_task(
        store.upload("up/cancelled", held_chunks(release), content_type="text/plain", limit=100)
    )
    await wait_for_open_upload(store, "up/")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.open_uploads("up/") == []
    assert await store.list_keys("up/") == []


async def test_an_upload_cancelled_while_it_is_being_created_leaves_no_open_upload(
    store,
) -> None:
    """The cancellation arrives while S3 creates the multipart upload: the upload that
    call makes is aborted once it exists, not left behind."""
    task = asyncio.create_task(
        store.upload("up/early", held_chunks(asyncio.Event()), content_type="text/plain", limit=99)
    )
    await asyncio.sleep(0)  # the task has started its first call, nothing more
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)  # a create left running in a thread would be done by now
    assert await store.open_uploads("up/") == []


async def held_chunks(release: asyncio.Event):  # type: ignore[no-untyped-def]
    yield b"the first part, "
    await release.wait()
    yield b"and the rest."


async def wait_for_open_upload(store, prefix: str):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while not (found := await store.open_uploads(prefix)):  # noqa: ASYNC110 (S3 has no event)
            await asyncio.sleep(0.02)
    return found


async def test_an_open_upload_is_listed_and_can_be_aborted(store) -> None:
    """A multipart upload left open (its process died mid-body) can be found and aborted:
    the stale-upload sweep's two calls."""
    began = time.time()
    release = asyncio.Event()
    task = asyncio.create_task(
        store.upload("up/held", held_chunks(release), content_type="text/plain", limit=100)
    )
    (found,) = await wait_for_open_upload(store, "up/")
    assert found.key == "up/held"
    assert began - 2 <= found.initiated <= time.time() + 2  # S3 keeps whole seconds
    assert await store.open_uploads("other/") == []
    await store.abort_upload(found.key, found.upload_id)
    await store.abort_upload(found.key, found.upload_id)  # gone already: no error
    assert await store.open_uploads("up/") == []
    release.set()
    with pytest.raises(StorageError):  # its parts are gone: it cannot complete
        await task
    assert await store.list_keys("up/") == []


async def test_a_digest_kept_with_an_object_is_checked_on_every_get(store) -> None:
    """Bytes that no longer match the SHA-256 they were stored with are refused, never
    handed out; a ranged read is not checked."""
    assert await store.put_if_absent("d/1", b"good", sha256=sha(b"good"), content_type="text/plain")
    await damage(store, "d/1", b"evil")
    with pytest.raises(IntegrityError):
        await store.get("d/1")
    assert await store.get_range("d/1", 0, 4) == b"evil"


async def damage(store, key: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    """Replace an object's bytes behind the adapter's back, keeping its stored digest."""
    if isinstance(store, MemoryStore):
        store.damage(key, data)
        return
    full_key = store.prefix + key
    client = s3_client(store.settings, 1)  # a plain boto3 client, behind the adapter's back
    kept = await asyncio.to_thread(client.head_object, Bucket=store.bucket, Key=full_key)
    await asyncio.to_thread(
        client.put_object, Bucket=store.bucket, Key=full_key, Body=data, Metadata=kept["Metadata"]
    )
    client.close()


async def test_a_put_sends_vellums_checksum_once_and_no_expect_header(
    s3_settings: S3Settings,
) -> None:
    """Vellum's SHA-256 is the only checksum sent (no CRC or MD5 besides, no second hash
    of the body for the signature, which signs the checksum header instead), and the body
    goes without `Expect: 100-continue` (no extra round trip per PUT): the bytes on the
    wire, recorded by a relay in front of the real server."""
    sent = bytearray()
    upstream = urllib.parse.urlsplit(s3_settings.endpoint)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bool
        ) -> None:
            while data := await source.read(65536):
                if record:
                    sent.extend(data)
                sink.write(data)
                await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = S3ObjectStore(msgspec.structs.replace(s3_settings, endpoint=f"http://127.0.0.1:{port}"))
    try:
        data = b"one checksum " * 1000
        assert await store.put_if_absent("h/1", data, sha256=sha(data), content_type="text/plain")
    finally:
        await store.close()
        server.close()
    head, _, body = bytes(sent).partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    assert request_line.startswith("PUT ")
    assert body == data
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    checksums = {name for name in headers if name.startswith("x-amz-checksum-")}
    assert checksums == {"x-amz-checksum-sha256"}
    assert "content-md5" not in headers
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert "x-amz-checksum-sha256" in signed.split(";")
    assert "expect" not in headers
    assert headers["if-none-match"] == "*"


async def test_listing_follows_continuation_past_a_thousand_keys(store) -> None:
    """S3 answers at most 1,000 keys per ListObjectsV2 page."""
    keys = [f"many/{n:05d}" for n in range(1005)]
    for start in range(0, len(keys), 100):  # below the adapter's bound on waiting calls
        await asyncio.gather(
            *(
                store.put_if_absent(key, b"k", sha256=sha(b"k"), content_type="text/plain")
                for key in keys[start : start + 100]
            )
        )
    assert await store.list_keys("many/") == keys
    assert await store.list_prefixes("") == ["many/"]


async def test_prefix_pages_give_every_folder_in_order_page_by_page(store) -> None:
    """What `reprocess --all` and `export --all` walk: 1,005 folders, more than a page."""
    folders = [f"walk/{n:05d}/" for n in range(1005)]
    for start in range(0, len(folders), 100):  # below the adapter's bound on waiting calls
        await asyncio.gather(
            *(
                store.put_if_absent(f"{folder}x", b"k", sha256=sha(b"k"), content_type="text/plain")
                for folder in folders[start : start + 100]
            )
        )
    pages = [page async for page in store.prefix_pages("walk/")]
    assert len(pages) >= 2
    assert [folder for page in pages for folder in page] == folders


def _s3_error(code: str, status: int, headers: dict[str, str] | None = None) -> S3Error:
    return S3Error("PutObject", status, code, headers or {})


def test_slow_down_asks_clients_to_wait_longer() -> None:
    """Retry-After was always 1 s, also when S3 throttled with SlowDown."""
    slow = translate(_s3_error("SlowDown", 503))
    assert isinstance(slow, StorageUnavailable)
    assert slow.extensions["retry_after_seconds"] == 5
    told = translate(_s3_error("ServiceUnavailable", 503, {"retry-after": "12"}))
    assert told.extensions["retry_after_seconds"] == 12
    assert translate(_s3_error("InternalError", 500)).extensions["retry_after_seconds"] == 1


class SlowingDown:
    """The real store, except that writes are throttled as S3 does with SlowDown."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        raise translate(_s3_error("SlowDown", 503))

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_a_throttled_write_answers_503_with_the_longer_retry_after(
    make_client, store
) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(SlowingDown(store))
    response = await client.post(
        "/v1/documents", data=b"Throttled.", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"


async def test_list_page_resumes_after_a_key_and_stops_at_its_limit(store) -> None:
    for name in ("p/a", "p/b", "p/c", "p/d", "q/a"):
        await store.put_if_absent(name, b"", sha256=sha(b""), content_type="text/plain")
    assert await store.list_page("p/", limit=2) == ["p/a", "p/b"]
    assert await store.list_page("p/", start_after="p/b", limit=2) == ["p/c", "p/d"]
    assert await store.list_page("p/", start_after="p/d") == []
    assert await store.list_page("p/", start_after="a") == ["p/a", "p/b", "p/c", "p/d"]
    assert await store.list_page("p/", start_after="p/bz") == ["p/c", "p/d"]  # not a key


async def test_delete_removes_a_key_and_a_missing_key_is_no_error(store) -> None:
    await store.put_if_absent("d/1", b"x", sha256=sha(b"x"), content_type="text/plain")
    await store.put_if_absent("d/2", b"y", sha256=sha(b"y"), content_type="text/plain")
    await store.delete("d/1")
    await store.delete("d/none")
    assert await store.list_keys("d/") == ["d/2"]
    with pytest.raises(ObjectNotFound):
        await store.get("d/1")
    assert await store.put_if_absent("d/1", b"z", sha256=sha(b"z"), content_type="text/plain")
