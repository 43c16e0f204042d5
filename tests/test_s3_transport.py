"""The S3 transport's retries (botocore's standard mode) against faults the real server
does not make on demand: a proxy in this test answers the first requests with an error
(or cuts or stalls them) and forwards the rest, signed again, to the real SeaweedFS.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

import msgspec
import pytest
from aiohttp import web

from service.errors import StorageError, StorageUnavailable
from service.storage.s3 import S3ObjectStore, S3Settings
from tests.test_storage_probe import dropping_proxy

MAX_ATTEMPTS = 3  # botocore's standard mode
BODY = b"a retried body"
DIGEST = hashlib.sha256(BODY).digest()

Fault = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def _error(status: int, code: str) -> web.Response:
    body = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
    return web.Response(status=status, body=body, content_type="application/xml")


@pytest.fixture
async def faulty(aiohttp_server, s3_settings: S3Settings):  # type: ignore[no-untyped-def]
    """A store whose PUTs meet `fault` for the first `times` attempts; and the count of
    PUT attempts the proxy saw."""
    forward = dropping_proxy(s3_settings, dropped="")
    stores: list[S3ObjectStore] = []

    async def start(
        fault: Fault, times: int, **settings: object
    ) -> tuple[S3ObjectStore, list[int]]:
        seen = [0]

        async def handle(request: web.Request) -> web.StreamResponse:
            if request.method == "PUT":
                seen[0] += 1
                if seen[0] <= times and (answer := await fault(request)) is not None:
                    return answer
            return await forward(request)  # type: ignore[no-any-return,misc]

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        server = await aiohttp_server(app)
        store = S3ObjectStore(
            msgspec.structs.replace(
                s3_settings, endpoint=f"http://127.0.0.1:{server.port}", **settings
            )
        )
        stores.append(store)
        return store, seen

    yield start
    for store in stores:
        await store.close()


async def slow_down(_: web.Request) -> web.Response:
    return _error(503, "SlowDown")


async def test_a_throttled_write_is_retried_until_it_succeeds(faulty) -> None:  # type: ignore[no-untyped-def]
    store, seen = await faulty(slow_down, MAX_ATTEMPTS - 1)
    assert await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [MAX_ATTEMPTS]
    assert await store.get("t/1") == BODY


async def test_the_third_failure_is_final_and_keeps_its_retry_after(faulty) -> None:  # type: ignore[no-untyped-def]
    store, seen = await faulty(slow_down, 100)
    with pytest.raises(StorageUnavailable) as failed:
        await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [MAX_ATTEMPTS]
    assert failed.value.extensions["retry_after_seconds"] == 5


async def test_an_internal_error_is_retried(faulty) -> None:  # type: ignore[no-untyped-def]
    async def internal(_: web.Request) -> web.Response:
        return _error(500, "InternalError")

    store, seen = await faulty(internal, 1)
    assert await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [2]


async def test_a_refusal_is_not_retried(faulty) -> None:  # type: ignore[no-untyped-def]
    async def denied(_: web.Request) -> web.Response:
        return _error(403, "AccessDenied")

    store, seen = await faulty(denied, 1)
    with pytest.raises(StorageError, match="AccessDenied") as failed:
        await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert not isinstance(failed.value, StorageUnavailable)
    assert seen == [1]


async def test_a_precondition_failed_is_an_answer_not_retried(faulty) -> None:  # type: ignore[no-untyped-def]
    async def nothing(_: web.Request) -> None:
        return None

    store, seen = await faulty(nothing, 0)
    assert await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert not await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [2]


async def test_a_cut_connection_is_retried(faulty) -> None:  # type: ignore[no-untyped-def]
    async def cut(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    # aiohttp itself sends an idempotent request again once when its connection is cut
    # (a kept-alive one the server closed, mostly); the second cut is a failed attempt.
    store, seen = await faulty(cut, 2)
    assert await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [3]


async def test_an_answer_slower_than_the_read_timeout_is_retried(faulty) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def stalled(_: web.Request) -> web.Response:
        await release.wait()  # never set: the client gives up first
        return web.Response()

    store, seen = await faulty(stalled, 1, timeout_seconds=0.5)
    assert await store.put_if_absent("t/1", BODY, sha256=DIGEST, content_type="text/plain")
    assert seen == [2]
