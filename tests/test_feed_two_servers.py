"""The change feed is exactly-once with two `vellum serve` processes writing to one bucket
and prefix at once, one of them slowed for part of the settle window, while a consumer
follows the feed from the start (SPEC §9, issue #17).

Real processes, real S3 (SeaweedFS). The one injected fault is the delay: the slow server
reaches S3 through a proxy in this test that holds back its writes of index entries and
records, as a writer on an overloaded node would be held back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import yarl
from aiohttp import web

from service.storage.embedded import free_ports
from service.storage.s3 import S3Settings
from tests.servers import ServerProcess, running_server, s3_environment

pytestmark = pytest.mark.integration

SETTLE_SECONDS = 2.0
HELD_SECONDS = 0.4  # within the write deadline (60% of the settle window)
WRITES_PER_SERVER = 12
# Hop-by-hop headers: the rest (Host included: the signature covers it) go on unchanged.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade"})
SESSION = web.AppKey("session", aiohttp.ClientSession)


class Proxy(msgspec.Struct):
    endpoint: str
    held: list[str]  # the keys of the writes it held back


@contextmanager
def delaying_proxy(endpoint: str, bucket: str) -> Iterator[Proxy]:
    """An HTTP proxy to `endpoint`, on a loop in a thread of its own (the test's main thread
    blocks while servers start): every request goes on as it came; a PUT of an index entry
    or a record is held back HELD_SECONDS first."""
    port = free_ports(1)[0]
    proxy = Proxy(endpoint=f"http://127.0.0.1:{port}", held=[])
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopped = asyncio.Event()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.path.removeprefix(f"/{bucket}/")
        if request.method == "PUT" and ("/index/" in key or "/records/" in key):
            proxy.held.append(key)
            await asyncio.sleep(HELD_SECONDS)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with request.app[SESSION].request(
            request.method,
            yarl.URL(f"{endpoint}{request.raw_path}", encoded=True),
            data=body,
            headers=headers,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent", "Accept"),
            allow_redirects=False,
        ) as answer:
            payload = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            if request.method != "HEAD":
                kept.pop("Content-Length", None)
                return web.Response(status=answer.status, body=payload, headers=kept)
            response = web.StreamResponse(status=answer.status, headers=kept)
            await response.prepare(request)  # a HEAD keeps the object's Content-Length
            return response

    async def serve() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app[SESSION] = aiohttp.ClientSession(auto_decompress=False)
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        loop.call_soon_threadsafe(ready.set)
        try:
            await stopped.wait()
        finally:
            await app[SESSION].close()
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the delaying proxy did not start"
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(stopped.set)
        thread.join(30)
        loop.close()


def post(server: ServerProcess, text: str, url: str) -> str:
    request = urllib.request.Request(
        f"{server.url}/v1/documents",
        data=json.dumps({"text": text, "source": {"url": url}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
        document_id: str = json.load(response)["id"]
        return document_id


def get(server: ServerProcess, path: str, **query: str) -> dict[str, Any]:
    address = f"{server.url}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(address, timeout=60) as response:
        page: dict[str, Any] = json.load(response)
        return page


def test_two_server_processes_and_a_consumer_see_every_version_exactly_once(
    tmp_path: Path, s3_settings: S3Settings
) -> None:
    settle = {
        "VELLUM_CHANGES_SETTLE_SECONDS": str(SETTLE_SECONDS),
        "VELLUM_ANALYSIS_PROCESSES": "0",
    }
    with delaying_proxy(s3_settings.endpoint, s3_settings.bucket) as proxy:
        slow_settings = msgspec.structs.replace(s3_settings, endpoint=proxy.endpoint)
        with (
            running_server(tmp_path, s3_environment(s3_settings) | settle) as fast,
            running_server(tmp_path, s3_environment(slow_settings) | settle) as slow,
        ):
            created: list[str] = []  # list.append is atomic: the writers share it
            seen: list[tuple[str, int]] = []

            def write(server: ServerProcess, name: str, n: int) -> None:
                time.sleep(0.1 * n)  # spread over a few settle windows
                text = f"Written by the {name} server, number {n}."
                created.append(post(server, text, f"https://example.org/{name}/{n}"))

            with ThreadPoolExecutor(8) as pool:
                writes = [
                    pool.submit(write, server, name, n)
                    for server, name in ((fast, "fast"), (slow, "slow"))
                    for n in range(WRITES_PER_SERVER)
                ]
                after: str | None = None
                quiet_since: float | None = None
                while True:
                    page = get(
                        fast, "/v1/changes", limit="5", **({"after": after} if after else {})
                    )
                    items = page["items"]
                    seen.extend((item["id"], item["version"]) for item in items)
                    after = str(page["next"])
                    if items or not all(write.done() for write in writes):
                        quiet_since = None
                    elif quiet_since is None:
                        quiet_since = time.monotonic()
                    elif time.monotonic() - quiet_since > SETTLE_SECONDS * 1.5:
                        break
                    time.sleep(0.05)
                for write in writes:
                    write.result()  # a failed write fails the test here
            held_records = [  # the versions (each document's head is a PUT of its own)
                key for key in proxy.held if "/records/" in key and not key.endswith("/latest.json")
            ]
            assert len(held_records) == WRITES_PER_SERVER  # the slow server wrote its share
            assert len(created) == 2 * WRITES_PER_SERVER
            assert sorted(seen) == sorted((document_id, 1) for document_id in created)
            assert len(set(seen)) == len(seen)
            # Lookups are served from S3 alone: each server finds what the other wrote.
            (found,) = get(slow, "/v1/documents", url="https://example.org/fast/3")["items"]
            assert found["url"] == "https://example.org/fast/3"
            every = get(fast, "/v1/documents", url="example.org", match="host")["items"]
            assert sorted(item["id"] for item in every) == sorted(created)
