"""Leases that an alive owner keeps (issue #13, item 4), on the real S3 server."""

from __future__ import annotations

import asyncio
import json

import msgspec

from service.analysis import Analyzer
from service.archive import Archive
from service.ingest import Arrival, Ingestor, IngestOutcome
from service.jobs import model
from service.jobs.imports import Jobs, Runner
from service.storage.s3 import S3ObjectStore
from service.submission import Submission
from tests.test_import_isolation import put_input

JOB = "6" * 32


class SlowIngestor(Ingestor):
    """Every line takes `seconds`: a chunk far slower than the lease."""

    def __init__(self, archive: Archive, analyzer: Analyzer, seconds: float) -> None:
        super().__init__(archive, analyzer)
        self.seconds = seconds
        self.started = asyncio.Event()

    async def ingest(self, submission: Submission, arrival: Arrival) -> IngestOutcome:
        self.started.set()
        await asyncio.sleep(self.seconds)
        return await super().ingest(submission, arrival)


async def test_a_chunk_slower_than_the_lease_keeps_its_job(store: S3ObjectStore) -> None:
    """The lease was renewed only at a chunk's end: another lease owner took the job over in
    the middle of a slow chunk, and the first one's checkpoint then failed (a livelock
    when every chunk is that slow)."""
    data = b"".join(json.dumps({"text": f"Slow line {n}."}).encode() + b"\n" for n in range(6))
    await put_input(store, JOB, data)
    jobs = Jobs(store)
    await jobs.recover(JOB)
    async with Analyzer(0) as analyzer:
        slow = SlowIngestor(Archive(store), analyzer, seconds=0.5)
        owner = Runner(
            jobs,
            slow,
            owner="alive",
            max_line_bytes=10**6,
            max_metadata_bytes=10**4,
            concurrency=1,
            lease_seconds=1.0,
        )
        other = Runner(
            jobs,
            slow,
            owner="other",
            max_line_bytes=10**6,
            max_metadata_bytes=10**4,
            lease_seconds=1.0,
        )
        running = asyncio.create_task(owner.run(JOB))
        await slow.started.wait()
        taken = None
        while not running.done() and taken is None:  # the chunk takes 6 × 0.5 s, 3 leases
            taken = await other.claim(JOB)
            await asyncio.sleep(0.2)
        assert taken is None, "another lease owner took the job from its alive owner"
        final = await running
    assert final is not None
    assert (final.state, final.counts.created) == ("succeeded", 6)


async def test_a_job_shorter_than_one_chunk_can_be_cancelled(store: S3ObjectStore) -> None:
    """Cancelling was looked at only before full chunks: a short job always ran to its end."""
    job = "7" * 32
    await put_input(store, job, b'{"text": "Never to be ingested."}\n')
    jobs = Jobs(store)
    await jobs.recover(job)
    await jobs.cancel(job)
    async with Analyzer(0) as analyzer:
        runner = Runner(
            jobs,
            Ingestor(Archive(store), analyzer),
            owner="me",
            max_line_bytes=10**6,
            max_metadata_bytes=10**4,
        )
        final = await runner.run(job)
    assert final is not None
    assert (final.state, final.counts.created) == ("cancelled", 0)
    assert not [key for key in await store.list_keys("") if key.startswith("records/")]


async def test_a_slow_chunk_ends_by_time_and_checkpoints_on_the_way(store: S3ObjectStore) -> None:
    """Chunks were sized by lines and bytes only: 6 slow lines were one chunk, so the job
    showed no progress until all had run. Now a chunk starts no line once it has run
    `chunk_seconds`: lines of 0.4 s under 1 s make chunks of 3 lines, each checkpointed,
    the lines not started carried into the next chunk, the counts exact."""
    job = "8" * 32
    data = b"".join(json.dumps({"text": f"Slow line {n}."}).encode() + b"\n" for n in range(6))
    await put_input(store, job, data)
    jobs = Jobs(store)
    await jobs.recover(job)
    async with Analyzer(0) as analyzer:
        runner = Runner(
            jobs,
            SlowIngestor(Archive(store), analyzer, seconds=0.4),
            owner="me",
            max_line_bytes=10**6,
            max_metadata_bytes=10**4,
            concurrency=1,
            chunk_seconds=1.0,
        )
        final = await runner.run(job)
    assert final is not None
    assert (final.state, final.counts.total, final.counts.created) == ("succeeded", 6, 6)
    assert len(await jobs.chunks(job, "results")) == 2
    progress = [
        msgspec.json.decode(await store.get(key), type=model.Checkpoint).next_line
        for key in await store.list_keys(model.checkpoints_prefix(job))
    ]
    assert 4 in progress  # the first three lines were checkpointed before the others ran
