"""Slow or abandoned imports (issue #13, item 7) on the real S3 server: a rate floor, a cap
on uploads at once, no multipart upload left open by any failure, and a sweep of the
ones a dead process left."""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest

from service.config import Config
from service.jobs.uploads import abort_stale_uploads
from service.storage.s3 import S3ObjectStore
from service.storage.s3.transport import S3Error, translate
from service.web.typedefs import LIFECYCLE
from tests.test_imports import NDJSON
from tests.test_storage import held_chunks, wait_for_open_upload

LINE = b'{"text": "A line of an import."}\n'
# A floor of 1,000 bytes per second over half-second windows; a stalled body would wait
# 5 s for its idle timeout, a trickled one for ever.
FLOORED = {
    "import_min_bytes_per_second": 1000,
    "import_rate_window_seconds": 0.5,
    "body_timeout_seconds": 5.0,
}


async def trickled(pieces: int, every: float):  # type: ignore[no-untyped-def]
    """20 bytes every `every` seconds: 200 bytes per second at 0.1 s."""
    for _ in range(pieces):
        yield b" " * 19 + b"\n"
        await asyncio.sleep(every)
    yield LINE


async def fast_then_stalled(release: asyncio.Event):  # type: ignore[no-untyped-def]
    yield LINE * 300  # ~10 KB at once: ten windows' worth, all in the first one
    await release.wait()
    yield LINE


def floored(config: Config, **more: object) -> Config:
    return msgspec.structs.replace(config, **FLOORED, **more)  # type: ignore[arg-type]


async def no_upload_left(store: S3ObjectStore) -> None:
    assert await store.open_uploads("") == []
    assert await store.list_keys("") == []


async def test_an_import_trickled_below_the_rate_floor_is_cut_off(
    make_client, s3_store: S3ObjectStore, config: Config
) -> None:
    """20 bytes every 0.1 s for 5 s was accepted (202) before: the idle timeout never
    fired. Now a 408 naming the floor, the connection closed, no upload left."""
    client = await make_client(s3_store, floored(config))
    response = await client.post("/v1/imports", data=trickled(50, 0.1), headers=NDJSON)
    problem = await response.json(content_type=None)
    assert response.status == 408
    assert problem["type"] == "/problems/request-timeout"
    assert (problem["limit_bytes_per_second"], problem["window_seconds"]) == (1000, 0.5)
    assert response.headers["Connection"].lower() == "close"
    await no_upload_left(s3_store)


async def test_bytes_that_came_early_do_not_carry_a_stalled_body(
    make_client, s3_store: S3ObjectStore, config: Config
) -> None:
    """The floor holds over every window, not on average: a fast start then silence is
    cut off a window later, long before the idle timeout."""
    client = await make_client(s3_store, floored(config))
    never = asyncio.Event()
    response = await asyncio.wait_for(
        client.post("/v1/imports", data=fast_then_stalled(never), headers=NDJSON), timeout=4
    )
    assert response.status == 408
    assert (await response.json(content_type=None))["limit_bytes_per_second"] == 1000
    await no_upload_left(s3_store)


async def test_an_import_above_the_floor_is_accepted(
    make_client, s3_store: S3ObjectStore, config: Config
) -> None:
    client = await make_client(s3_store, floored(config))
    response = await client.post("/v1/imports", data=LINE * 2000, headers=NDJSON)
    assert response.status == 202
    assert await s3_store.open_uploads("") == []


async def test_imports_beyond_the_upload_cap_get_503(
    make_client, s3_store: S3ObjectStore, config: Config
) -> None:
    """A second import while one is uploading was accepted before; now 503 overloaded
    with Retry-After, at once, and the next one after the first ended is accepted."""
    client = await make_client(s3_store, msgspec.structs.replace(config, max_import_uploads=1))
    release = asyncio.Event()
    first = asyncio.create_task(
        client.post("/v1/imports", data=held_chunks(release), headers=NDJSON)
    )
    await wait_for_open_upload(s3_store, "imports/")
    refused = await client.post("/v1/imports", data=LINE, headers=NDJSON)
    problem = await refused.json(content_type=None)
    assert refused.status == 503
    assert problem["type"] == "/problems/overloaded"
    assert problem["limit_uploads"] == 1
    assert refused.headers["Retry-After"]
    release.set()
    assert (await first).status == 202
    assert (await client.post("/v1/imports", data=LINE, headers=NDJSON)).status == 202
    assert await s3_store.open_uploads("") == []


async def test_a_client_gone_mid_import_leaves_no_open_upload(
    make_client, s3_store: S3ObjectStore
) -> None:
    client = await make_client(s3_store)
    head = (
        b"POST /v1/imports HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    sock = await asyncio.to_thread(socket.create_connection, (client.host, client.port))
    with sock:
        await asyncio.to_thread(sock.sendall, head + LINE * 100)
        await wait_for_open_upload(s3_store, "imports/")
    lifecycle = client.app[LIFECYCLE]
    async with asyncio.timeout(10):
        while lifecycle.in_flight:  # noqa: ASYNC110 (a count, with no event of its own)
            await asyncio.sleep(0.02)
    await no_upload_left(s3_store)


async def test_a_storage_error_mid_import_leaves_no_open_upload(
    make_client, s3_store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_part(*_: object) -> None:
        raise translate(S3Error("UploadPart", 500, "InternalError", {}))

    monkeypatch.setattr(s3_store, "_upload_part", failing_part)
    client = await make_client(s3_store)
    response = await client.post("/v1/imports", data=LINE * 10, headers=NDJSON)
    assert response.status == 503
    await no_upload_left(s3_store)


async def test_the_sweep_aborts_stale_import_uploads_only(s3_store: S3ObjectStore) -> None:
    """An upload its process abandoned (here: held open) is aborted once it is older than
    the threshold; a younger one, and one outside imports/, are left alone."""
    release = asyncio.Event()
    tasks = [
        asyncio.create_task(s3_store.upload(key, held_chunks(release), content_type="x", limit=99))
        for key in ("imports/abandoned/input.ndjson", "elsewhere/upload")
    ]
    await wait_for_open_upload(s3_store, "imports/")
    await wait_for_open_upload(s3_store, "elsewhere/")
    assert await abort_stale_uploads(s3_store, older_than_seconds=3600) == 0
    assert len(await s3_store.open_uploads("imports/")) == 1
    assert await abort_stale_uploads(s3_store, older_than_seconds=0) == 1
    assert await s3_store.open_uploads("imports/") == []
    assert len(await s3_store.open_uploads("elsewhere/")) == 1
    release.set()
    abandoned, elsewhere = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(abandoned, Exception)  # its parts are gone: it cannot complete
    assert not isinstance(elsewhere, Exception)
