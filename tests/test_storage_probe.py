"""The start-up probe of SPEC §2 (issue #13, item 10): an endpoint that would silently
overwrite, or keep bytes that fail their checksum, is refused with the guarantee named.

The faulty endpoints are the real SeaweedFS behind a small proxy in this test that drops
one header from every request (`If-None-Match`, or `x-amz-checksum-sha256`) and signs
the request again with the same credentials, as a server ignoring that header would
behave.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import msgspec
import pytest
from aiohttp import web
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from service.errors import UnsafeStorage
from service.storage.s3 import S3ObjectStore, S3Settings

_HOP_BY_HOP = {"host", "authorization", "x-amz-date", "x-amz-content-sha256", "content-length"}
_HOP_BY_HOP |= {"connection", "transfer-encoding", "expect", "accept-encoding"}


def dropping_proxy(settings: S3Settings, dropped: str) -> Callable[[web.Request], object]:
    assert settings.access_key_id is not None
    assert settings.secret_access_key is not None
    credentials = Credentials(settings.access_key_id, settings.secret_access_key)

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _HOP_BY_HOP and name.lower() != dropped
        }
        signed = AWSRequest(
            method=request.method,
            url=f"{settings.endpoint}{request.path_qs}",
            data=body,
            headers=headers,
        )
        S3SigV4Auth(credentials, "s3", settings.region).add_auth(signed)
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                signed.url,
                data=body,
                headers=dict(signed.headers.items()),
                skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
            ) as answer,
        ):
            payload = await answer.read()
            kept = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            return web.Response(status=answer.status, body=payload, headers=kept)

    return forward


@pytest.fixture
def through_proxy(aiohttp_server, s3_settings: S3Settings):  # type: ignore[no-untyped-def]
    async def start(dropped: str) -> AsyncIterator[S3ObjectStore]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", dropping_proxy(s3_settings, dropped))
        server = await aiohttp_server(app)
        endpoint = f"http://127.0.0.1:{server.port}"
        return S3ObjectStore(msgspec.structs.replace(s3_settings, endpoint=endpoint))

    return start


async def test_the_real_endpoint_keeps_both_guarantees(s3_store: S3ObjectStore) -> None:
    await s3_store.ensure_bucket()
    await s3_store.prove_guarantees()  # again: the probe keys exist now


async def test_an_endpoint_ignoring_if_none_match_is_refused(through_proxy) -> None:  # type: ignore[no-untyped-def]
    store = await through_proxy("if-none-match")
    try:
        assert await store.list_keys("") == []  # the proxy passes ordinary calls
        with pytest.raises(UnsafeStorage, match=r"second conditional create.*412"):
            await store.ensure_bucket()
    finally:
        await store.close()


async def test_an_endpoint_not_checking_checksums_is_refused(through_proxy) -> None:  # type: ignore[no-untyped-def]
    store = await through_proxy("x-amz-checksum-sha256")
    try:
        with pytest.raises(UnsafeStorage, match=r"SHA-256 does not match.*400"):
            await store.ensure_bucket()
    finally:
        await store.close()
