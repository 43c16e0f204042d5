"""Load shedding and limits: refuse at once with a clear problem, never queue for ever."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from service.errors import Overloaded
from service.storage.s3 import PENDING_PER_CONNECTION, S3ObjectStore
from service.web.typedefs import LIFECYCLE

TEXT = {"Content-Type": "text/plain; charset=utf-8"}


async def stalled_body(release: asyncio.Event, name: str = "a"):  # type: ignore[no-untyped-def]
    yield f"first part of body {name}, ".encode()
    await release.wait()
    yield b"and the rest."


async def test_requests_beyond_the_in_flight_limit_get_503(make_client, store, config) -> None:
    client = await make_client(store, msgspec.structs.replace(config, max_in_flight=2))
    release = asyncio.Event()
    held = [
        asyncio.create_task(
            client.post("/v1/documents", data=stalled_body(release, str(n)), headers=TEXT)
        )
        for n in range(2)
    ]
    lifecycle = client.app[LIFECYCLE]
    async with asyncio.timeout(10):  # both are in flight, waiting for their bodies
        while lifecycle.in_flight < 2:  # noqa: ASYNC110 (a count, with no event of its own)
            await asyncio.sleep(0.01)
    refused = await client.post("/v1/documents", data=b"one too many", headers=TEXT)
    problem = await refused.json(content_type=None)
    assert refused.status == 503
    assert problem["type"] == "/problems/overloaded"
    assert problem["limit_in_flight"] == 2
    assert refused.headers["Retry-After"]
    assert (await client.get("/healthz")).status == 200  # probes are never shed
    scrape = await (await client.get("/metrics")).text()
    assert "vellum_http_requests_shed_total 1.0" in scrape
    release.set()
    assert sorted([(await task).status for task in held]) == [201, 201]
    assert (await client.post("/v1/documents", data=b"room again", headers=TEXT)).status == 201


async def test_body_bytes_beyond_the_servers_budget_get_503(make_client, store, config) -> None:
    """Requests under the in-flight count could hold any number of bytes between them
    (256 x 5 MiB) before; now the bytes of bodies held at once are bounded: a declared
    length that would pass the budget is refused before it is read."""
    budget = config.max_body_bytes  # at least one largest body must fit
    client = await make_client(
        store, msgspec.structs.replace(config, max_body_bytes_in_flight=budget)
    )
    release = asyncio.Event()
    held = asyncio.create_task(
        client.post("/v1/documents", data=stalled_body(release), headers=TEXT)
    )
    lifecycle = client.app[LIFECYCLE]
    async with asyncio.timeout(10):  # its first part is held, waiting for the rest
        while lifecycle.body_bytes == 0:  # noqa: ASYNC110 (a count, with no event of its own)
            await asyncio.sleep(0.01)
    largest = b"a" * config.max_body_bytes
    refused = await client.post("/v1/documents", data=largest, headers=TEXT)
    problem = await refused.json(content_type=None)
    assert refused.status == 503
    assert problem["type"] == "/problems/overloaded"
    assert problem["limit_body_bytes"] == budget
    assert refused.headers["Retry-After"]
    release.set()
    assert (await held).status == 201
    assert lifecycle.body_bytes == 0  # given back when each request ended
    assert (await client.post("/v1/documents", data=largest, headers=TEXT)).status == 201
    assert lifecycle.body_bytes == 0


async def test_a_body_that_stops_arriving_gets_408(make_client, store, config) -> None:
    client = await make_client(store, msgspec.structs.replace(config, body_timeout_seconds=0.5))
    never = asyncio.Event()
    task = asyncio.create_task(client.post("/v1/documents", data=stalled_body(never), headers=TEXT))
    response = await asyncio.wait_for(task, timeout=10)
    problem = await response.json(content_type=None)
    assert response.status == 408
    assert problem["type"] == "/problems/request-timeout"
    assert problem["limit_seconds"] == 0.5
    assert await store.list_keys("") == []


async def test_an_import_body_that_stops_arriving_gets_408(make_client, store, config) -> None:
    client = await make_client(store, msgspec.structs.replace(config, body_timeout_seconds=0.5))
    never = asyncio.Event()
    response = await asyncio.wait_for(
        client.post(
            "/v1/imports",
            data=stalled_body(never),
            headers={"Content-Type": "application/x-ndjson"},
        ),
        timeout=10,
    )
    assert response.status == 408
    assert [key for key in await store.list_keys("") if "input" in key] == []


async def test_s3_calls_beyond_the_pending_bound_fail_at_once(s3_settings) -> None:
    store = S3ObjectStore(msgspec.structs.replace(s3_settings, max_connections=1))
    try:
        calls = [store.list_keys("") for _ in range(PENDING_PER_CONNECTION + 20)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        refused = [r for r in results if isinstance(r, Overloaded)]
        assert len(refused) == 20
        assert all(isinstance(r, list) for r in results if not isinstance(r, Overloaded))
        assert await store.list_keys("") == []  # and it serves again afterwards
    finally:
        await store.close()


@pytest.mark.parametrize("depth", [33, 100_000])
async def test_metadata_nested_too_deep_is_422(client, store, depth: int) -> None:
    body = b'{"text": "a", "metadata": {"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}}"
    response = await client.post(
        "/v1/documents", data=body, headers={"Content-Type": "application/json"}
    )
    problem = await response.json(content_type=None)
    assert response.status == 422
    assert problem["type"] == "/problems/nesting-too-deep"
    assert problem["limit_depth"] == 32
    assert await store.list_keys("") == []
