"""Import jobs as they are kept in the bucket: keys, manifest, checkpoints, status.

    imports/<job>/input.ndjson                 the input of an HTTP import, as received
    imports/inputs/sha256/<hex>                the input of a CLI import, content-addressed
    imports/<job>/manifest.json                what the job is (immutable)
    imports/<job>/checkpoints/<seq>.json       the job's progress, one object per step
    imports/<job>/errors/<first line>.ndjson   the bad lines of one chunk
    imports/<job>/results/<first line>.ndjson  the stored lines of one chunk
    imports/<job>/cancel                       present once cancelling was asked for

Objects are never overwritten. A checkpoint is written as a conditional create of the
next sequence number: that both records progress and proves the writer held the job, so
two workers can never both advance it (the loser's create fails). A checkpoint carries a
lease (owner, expiry): a worker continues a job only while its lease is the latest, or
takes over once the lease has expired.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from service import ids
from service.errors import MalformedId

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
PREFIX = "imports/"


class Shard(msgspec.Struct, frozen=True):
    index: int  # 0-based
    count: int

    def owns(self, line: int) -> bool:
        """Lines are dealt round-robin: shard i of N takes lines i+1, i+1+N, ..."""
        return (line - 1) % self.count == self.index

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f"a shard is i/N with 0 <= i < N, not {text!r}")
        return cls(index=int(index), count=int(count))


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    job: str
    created_at: str
    channel: Literal["http", "cli"]
    input_key: str
    input_bytes: int
    input_sha256: str
    input_lines: int | None  # known when the input was counted on the way in
    # The input's ETag when the job was made: every read is pinned to it (If-Match), and
    # the input's SHA-256 is checked against `input_sha256` at the job's end. None in
    # jobs made before inputs were pinned (their `input_sha256` of an s3:// input was an
    # identity of its key and size, not a digest).
    input_etag: str | None = None
    shard: Shard | None = None
    request_id: str | None = None
    submitter: str | None = None  # the API key id that started the job, never the key


class Counts(msgspec.Struct, frozen=True):
    total: int = 0  # lines of this job handled so far (all lines when it is done)
    created: int = 0
    duplicates: int = 0
    failed: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.total + other.total,
            self.created + other.created,
            self.duplicates + other.duplicates,
            self.failed + other.failed,
        )


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    state: State
    next_line: int  # 1-based number of the next line to read
    next_offset: int  # its byte offset in the input
    counts: Counts
    lease_owner: str | None
    lease_expires: float  # Unix time; 0 when nobody holds the job
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None


class JobLinks(msgspec.Struct, frozen=True):
    self: str
    errors: str
    results: str


class JobStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The body of `GET /v1/imports/{job}`."""

    job: str
    state: State
    total: int
    created: int
    duplicates: int
    failed: int
    input_bytes: int
    input_lines: int | None
    processed_bytes: int
    shard: Shard | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    error: str | None
    links: JobLinks

    @property
    def counts(self) -> Counts:
        return Counts(self.total, self.created, self.duplicates, self.failed)

    @classmethod
    def of(cls, manifest: Manifest, checkpoint: Checkpoint) -> JobStatus:
        base = f"/v1/imports/{manifest.job}"
        return cls(
            job=manifest.job,
            state=checkpoint.state,
            total=checkpoint.counts.total,
            created=checkpoint.counts.created,
            duplicates=checkpoint.counts.duplicates,
            failed=checkpoint.counts.failed,
            input_bytes=manifest.input_bytes,
            input_lines=manifest.input_lines,
            processed_bytes=checkpoint.next_offset,
            shard=manifest.shard,
            created_at=manifest.created_at,
            started_at=checkpoint.started_at,
            finished_at=checkpoint.finished_at,
            updated_at=checkpoint.updated_at,
            error=checkpoint.error,
            links=JobLinks(self=base, errors=f"{base}/errors", results=f"{base}/results"),
        )


def new_job_id() -> str:
    return ids.random_id()


def job_id_for(input_sha256: str, shard: Shard | None) -> str:
    """The id of a CLI import: the same input and shard resume the same job."""
    part = f"{shard.index}/{shard.count}" if shard else "0/1"
    material = f"vellum.import/1\n{input_sha256}\n{part}"
    return ids.encode_id(hashlib.sha256(material.encode()).digest())


def parse_job_id(value: str) -> str:
    if not ids.is_id(value):
        raise MalformedId("job ids are 32 characters of a-z and 2-7", job=value[:64])
    return value


def manifest_key(job: str) -> str:
    return f"{PREFIX}{job}/manifest.json"


def input_key(job: str) -> str:
    return f"{PREFIX}{job}/input.ndjson"


def shared_input_key(sha256_hex: str) -> str:
    return f"{PREFIX}inputs/sha256/{sha256_hex}"


def checkpoints_prefix(job: str) -> str:
    return f"{PREFIX}{job}/checkpoints/"


def checkpoint_key(job: str, seq: int) -> str:
    return f"{checkpoints_prefix(job)}{seq:09d}.json"


def chunk_key(job: str, kind: Literal["errors", "results"], first_line: int) -> str:
    return f"{PREFIX}{job}/{kind}/{first_line:012d}.ndjson"


def cancel_key(job: str) -> str:
    return f"{PREFIX}{job}/cancel"
