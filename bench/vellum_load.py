"""Load on Vellum's HTTP API: one aiohttp session, as many connections as workers.

Ingest POSTs each document as `text/plain; charset=utf-8` to /v1/documents (201 is a
success; anything else, a duplicate's 200 included, is an error, since every document
is new). Read GETs /v1/documents/{id} (200 is a success). A latency runs from sending
the request to having read the whole response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec

from bench.measure import Timings

TEXT_PLAIN = "text/plain; charset=utf-8"


class _Receipt(msgspec.Struct):
    id: str


_receipt = msgspec.json.Decoder(_Receipt)


class _Refused(Exception):
    """The server answered with a status other than the expected one."""


def _check(status: int, expected: int, body: bytes) -> None:
    if status != expected:
        raise _Refused(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")


async def _run(
    count: int,
    concurrency: int,
    operation: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
) -> Timings:
    """Run operation(session, 0..count-1) on `concurrency` workers."""
    timings = Timings()
    next_index = iter(range(count))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for index in next_index:
                started = time.perf_counter()
                try:
                    size = await operation(session, index)
                except aiohttp.ClientError as exc:
                    timings.failed(repr(exc))
                    continue
                except _Refused as refused:
                    timings.failed(str(refused))
                    continue
                timings.latencies.append(time.perf_counter() - started)
                timings.body_bytes += size

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        timings.seconds = time.perf_counter() - began
    return timings


def post_documents(url: str, documents: list[bytes], concurrency: int) -> tuple[Timings, list[str]]:
    """POST every document; returns the ids of the documents created."""
    ids: list[str] = []

    async def post(session: aiohttp.ClientSession, index: int) -> int:
        async with session.post(
            f"{url}/v1/documents", data=documents[index], headers={"Content-Type": TEXT_PLAIN}
        ) as response:
            body = await response.read()
        _check(response.status, 201, body)
        ids.append(_receipt.decode(body).id)
        return 0  # the receipt is not counted as read data

    timings = asyncio.run(_run(len(documents), concurrency, post))
    return timings, ids


def get_documents(
    url: str, ids: list[str], concurrency: int, version: int | None = None
) -> Timings:
    """GET the latest record of every id (one S3 LIST and one GET each), or the given
    version (one GET each)."""
    query = "" if version is None else f"?version={version}"

    async def get(session: aiohttp.ClientSession, index: int) -> int:
        async with session.get(f"{url}/v1/documents/{ids[index]}{query}") as response:
            body = await response.read()
        _check(response.status, 200, body)
        return len(body)

    return asyncio.run(_run(len(ids), concurrency, get))


class _JobStatus(msgspec.Struct):
    state: str
    total: int
    created: int
    failed: int


_job_status = msgspec.json.Decoder(_JobStatus)
_TERMINAL = {"succeeded", "failed", "cancelled"}


def import_documents(url: str, documents: list[bytes]) -> tuple[float, _JobStatus]:
    """POST one NDJSON import of `documents` and wait for the job to end.

    Returns the seconds from sending the request to seeing the job end, and its status.
    """

    async def run() -> tuple[float, _JobStatus]:
        body = b"".join(
            msgspec.json.encode({"text": document.decode("utf-8")}) + b"\n"
            for document in documents
        )
        async with aiohttp.ClientSession() as session:
            began = time.perf_counter()
            async with session.post(
                f"{url}/v1/imports", data=body, headers={"Content-Type": "application/x-ndjson"}
            ) as response:
                answer = await response.read()
                _check(response.status, 202, answer)
                location = response.headers["Location"]
            while True:
                async with session.get(f"{url}{location}") as response:
                    status = _job_status.decode(await response.read())
                if status.state in _TERMINAL:
                    return time.perf_counter() - began, status
                await asyncio.sleep(0.05)

    return asyncio.run(run())
