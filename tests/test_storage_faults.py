"""The S3 server killed with SIGKILL in the middle of concurrent ingests, then restarted.

Real parts only: a SeaweedFS of this test's own (restarted by `EmbeddedS3.supervise`, the
code `vellum serve` uses for its embedded storage) and `vellum serve` as a process.
Promises checked: every client gets an answer (201/200, or a 503 problem), never a hang;
every document answered 201 is retrievable byte for byte afterwards; no record exists
without its original.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import msgspec

from service.jobs.verify import verify
from service.storage.embedded import EmbeddedS3
from service.storage.s3 import S3ObjectStore
from tests.servers import running_server, s3_environment

DOCUMENTS = 1000
CONCURRENCY = 32
KILL_AFTER = 250


async def test_s3_killed_mid_load_loses_nothing(tmp_path: Path) -> None:
    s3 = EmbeddedS3(tmp_path / "s3", bucket="faults")
    settings = s3.start()
    store = S3ObjectStore(settings)
    supervisor: asyncio.Task[None] | None = None
    try:
        await s3.wait_ready(store)
        supervisor = asyncio.create_task(s3.supervise(store))
        env = {**s3_environment(settings), "VELLUM_S3_TIMEOUT_SECONDS": "3"}
        with running_server(tmp_path, env) as server:
            answers = await _post_while_killing(server.url, s3)
            async with aiohttp.ClientSession() as session:
                # The supervisor restarts SeaweedFS; Vellum becomes ready and ingests again.
                async with asyncio.timeout(60):
                    while True:
                        async with session.get(f"{server.url}/readyz") as response:
                            if response.status == 200:
                                break
                        await asyncio.sleep(0.2)
                    # Writes failed during the outage, so ready means a probe write
                    # succeeded. Should another volume still need a moment, a write is a
                    # 503 with Retry-After, and a client that honours it gets its 201.
                    while True:
                        async with session.post(
                            f"{server.url}/v1/documents",
                            data=b"After the restart.",
                            headers={"Content-Type": "text/plain"},
                        ) as response:
                            if response.status != 503:
                                assert response.status == 201
                                break
                            await asyncio.sleep(float(response.headers["Retry-After"]))
                # Every 201 given before, during and after the fault reads back exactly.
                for body, status, document_id in answers:
                    if status != 201:
                        continue
                    url = f"{server.url}/v1/documents/{document_id}/original"
                    async with session.get(url) as response:
                        assert response.status == 200
                        assert await response.read() == body
        report = await verify(store)
    finally:
        if supervisor is not None:
            supervisor.cancel()
        await store.close()
        s3.stop()

    statuses = [status for _, status, _ in answers]
    print(
        f"\nfault test: {len(statuses)} answered, {statuses.count(201)} created, {statuses.count(503)} refused with 503, findings {len(report.findings)}"
    )
    assert len(statuses) == DOCUMENTS  # everyone got an answer
    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    assert statuses.count(201) >= KILL_AFTER - CONCURRENCY  # those before the fault
    assert statuses.count(503) > 0  # the fault really happened
    # Requests cut by the fault leave unreferenced originals, and index entries without
    # their record (which verify removes); nothing else.
    assert [f for f in report.findings if f.kind not in ("unreferenced", "stale-index")] == []


async def _post_while_killing(url: str, s3: EmbeddedS3) -> list[tuple[bytes, int, str | None]]:
    answers: list[tuple[bytes, int, str | None]] = []
    bodies = [f"Fault test document {n}. “Quoted.”".encode() for n in range(DOCUMENTS)]
    pending = iter(bodies)
    killed = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=60)  # a hang would fail the test, not stall it

    async def client(session: aiohttp.ClientSession) -> None:
        for body in pending:
            async with session.post(
                f"{url}/v1/documents",
                data=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            ) as response:
                answer = await response.read()
                document_id = None
                if response.status in (200, 201):
                    document_id = msgspec.json.decode(answer)["id"]
                else:
                    problem = msgspec.json.decode(answer)
                    assert response.headers["Content-Type"].startswith("application/problem+json")
                    assert problem["status"] == response.status
                answers.append((body, response.status, document_id))
            if len(answers) >= KILL_AFTER and not killed.is_set():
                killed.set()
                assert s3.process is not None
                os.kill(s3.process.pid, signal.SIGKILL)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
    return answers
