"""Running import jobs: the same code for the server's import poller and `vellum import`.

A job reads its input in chunks of `CHUNK_LINES` lines or `CHUNK_BYTES` bytes of lines,
whichever comes first, and a chunk starts no new line after `chunk_seconds` (the lines it
did not start begin the next chunk). Each line goes through the same
path as a JSON POST (`submission.from_json_document`, then `Ingestor.ingest`), so ids,
deduplication and records are the same as over HTTP. A bad line becomes an entry of the
job's errors, `{"line": n, "problem": {...}}`, and never stops the job. After each chunk
the job writes that chunk's errors and results, then a checkpoint (see `model`).

Within a chunk, lines are ingested concurrently, except that a line repeating an earlier
line's document (the same id) is not sent again: it is that document's duplicate.
Resuming is exact: a chunk cut short by a crash is done again from its first line, and a
line whose document exists already counts as `created` when that document's record was
made by this job from this very line (its provenance says so), else as `duplicate`. So
after any number of crashes the counts are those of a run without one, and no document is
made twice. Storage being away (`StorageUnavailable`) is not a bad line: it stops the
chunk, and the job is retried from its last checkpoint. Any other failure of a line (its
analysis timed out or failed, a stored object failed its digest, a bug) makes that line
a failed line with its problem, and the job goes on. A job that cannot go on (its input
or manifest unreadable, its input not the one it was made for: see `inputs`, an
unexpected error outside a line) ends `failed` with the reason; a job whose first
checkpoint was never written (a crash right after its manifest) gets it and runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import socket
import time
import uuid
from collections.abc import Callable

import msgspec
import structlog

from service import ids, submission
from service.errors import (
    ObjectNotFound,
    PayloadTooLarge,
    RequestError,
    StorageError,
    StorageUnavailable,
    VellumError,
)
from service.ingest import Arrival, Ingestor, document_id_of
from service.jobs import model
from service.jobs.inputs import input_changed
from service.jobs.lines import Line, read_lines
from service.media import APPLICATION_JSON, APPLICATION_NDJSON, TEXT_PLAIN
from service.storage.port import BulkStore, ObjectInfo
from service.submission import Submission
from service.timestamps import now_text

log = structlog.get_logger("vellum.imports")

CHUNK_LINES = 500
# A chunk also ends once its lines hold this many bytes: 500 lines of up to 5 MiB each
# (plus what they decode to) would not fit a 512 MiB pod.
CHUNK_BYTES = 16 * 1024 * 1024
# And a chunk starts no new line once it has run this long (VELLUM_IMPORT_CHUNK_SECONDS),
# so a job with slow lines still checkpoints (and reports progress) at a steady cadence.
CHUNK_SECONDS = 30.0
_encoder = msgspec.json.Encoder()
_manifest_decoder = msgspec.json.Decoder(model.Manifest)
_checkpoint_decoder = msgspec.json.Decoder(model.Checkpoint)

Progress = Callable[[model.Checkpoint], None]


def lease_owner_name() -> str:
    """A name for this process's leases on jobs: the host and a random part."""
    return f"{socket.gethostname()}/{uuid.uuid4().hex[:12]}"


class JobLost(Exception):
    """Another lease owner advanced the job: this one must stop working on it."""


class Jobs:
    """Reading and writing import jobs in one archive."""

    def __init__(self, store: BulkStore) -> None:
        self.store = store

    async def _put_json(self, key: str, value: object) -> bool:
        data = _encoder.encode(value)
        return await self.store.put_if_absent(
            key, data, sha256=hashlib.sha256(data).digest(), content_type=APPLICATION_JSON
        )

    async def create(self, manifest: model.Manifest) -> model.Checkpoint:
        """Record a new job (or find the one with this id) and return its latest state."""
        if await self._put_json(model.manifest_key(manifest.job), manifest):
            first = _first_checkpoint(manifest)
            if await self._put_json(model.checkpoint_key(manifest.job, 1), first):
                return first
        return await self.latest(manifest.job)

    async def recover(self, job: str) -> model.Checkpoint | None:
        """The latest checkpoint of `job`; for a job whose manifest exists but whose first
        checkpoint was never written (a crash between the two), that first checkpoint,
        written now. None when there is no manifest either (not a job)."""
        try:
            return await self.latest(job)
        except ObjectNotFound:
            pass
        try:
            manifest = await self.manifest(job)
        except ObjectNotFound:
            return None
        log.warning("import_first_checkpoint_recovered", job=job)
        await self._put_json(model.checkpoint_key(job, 1), _first_checkpoint(manifest))
        return await self.latest(job)

    async def manifest(self, job: str) -> model.Manifest:
        return _manifest_decoder.decode(await self.store.get(model.manifest_key(job)))

    async def latest(self, job: str) -> model.Checkpoint:
        keys = await self.store.list_keys(model.checkpoints_prefix(job))
        if not keys:
            raise ObjectNotFound(f"no import job {job}")
        return _checkpoint_decoder.decode(await self.store.get(max(keys)))

    async def fail_unreadable(self, job: str, reason: str) -> None:
        """End a job whose latest checkpoint cannot be read: the next checkpoint says
        `failed` and why (its counts start from zero: the unreadable one had them)."""
        keys = await self.store.list_keys(model.checkpoints_prefix(job))
        seq = int(max(keys).rsplit("/", 1)[-1].split(".")[0]) + 1 if keys else 1
        at = now_text()
        final = _at_the_start(seq, "failed", at, finished_at=at, error=reason)
        await self._put_json(model.checkpoint_key(job, seq), final)

    async def job_ids(self) -> list[str]:
        prefixes = await self.store.list_prefixes(model.PREFIX)
        names = [prefix[len(model.PREFIX) :].rstrip("/") for prefix in prefixes]
        return [name for name in names if ids.is_id(name)]

    async def cancel(self, job: str) -> None:
        await self.store.put_if_absent(
            model.cancel_key(job),
            b"",
            sha256=hashlib.sha256(b"").digest(),
            content_type=TEXT_PLAIN,
        )

    async def cancelled(self, job: str) -> bool:
        try:
            await self.store.get(model.cancel_key(job))
        except ObjectNotFound:
            return False
        return True

    async def chunks(self, job: str, kind: str) -> list[str]:
        return await self.store.list_keys(f"{model.PREFIX}{job}/{kind}/")

    async def advance(
        self, job: str, previous: model.Checkpoint, **changes: object
    ) -> model.Checkpoint:
        """Write the checkpoint after `previous`; JobLost if another lease owner got there
        first."""
        following = msgspec.structs.replace(
            previous, seq=previous.seq + 1, updated_at=now_text(), **changes
        )
        if not await self._put_json(model.checkpoint_key(job, following.seq), following):
            raise JobLost(job)
        return following


def _first_checkpoint(manifest: model.Manifest) -> model.Checkpoint:
    return _at_the_start(1, "queued", manifest.created_at)


def _at_the_start(
    seq: int, state: model.State, updated_at: str, **ending: str | None
) -> model.Checkpoint:
    """A checkpoint at the input's start: nothing read or counted, nobody holding it."""
    return model.Checkpoint(
        seq=seq,
        state=state,
        next_line=1,
        next_offset=0,
        counts=model.Counts(),
        lease_owner=None,
        lease_expires=0.0,
        updated_at=updated_at,
        **ending,
    )


class Runner:
    """Works through one job's input, chunk by chunk, holding the job's lease."""

    def __init__(
        self,
        jobs: Jobs,
        ingestor: Ingestor,
        *,
        owner: str,
        max_line_bytes: int,
        max_metadata_bytes: int,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        chunk_seconds: float = CHUNK_SECONDS,
        progress: Progress | None = None,
        on_chunk: Callable[[model.Counts], None] | None = None,
    ) -> None:
        self.on_chunk = on_chunk or (lambda counts: None)
        self.lease_seconds = lease_seconds
        self.chunk_seconds = chunk_seconds
        self.jobs = jobs
        self.ingestor = ingestor
        self.owner = owner
        self.max_line_bytes = max_line_bytes
        self.max_metadata_bytes = max_metadata_bytes
        self.limit = asyncio.Semaphore(concurrency)
        self.progress = progress or (lambda checkpoint: None)

    def reporting_to(self, progress: Progress) -> Runner:
        """This runner (same lease owner, same limits), reporting each checkpoint to
        `progress` (the progress bar of `vellum import`)."""
        following = copy.copy(self)
        following.progress = progress
        return following

    async def claim(self, job: str) -> model.Checkpoint | None:
        """Take the job if it is open and nobody else holds a live lease on it."""
        latest = await self.jobs.latest(job)
        if latest.state in model.TERMINAL:
            return None
        if latest.lease_owner not in (None, self.owner) and latest.lease_expires > time.time():
            return None
        try:
            return await self.jobs.advance(
                job,
                latest,
                state="running",
                lease_owner=self.owner,
                lease_expires=time.time() + self.lease_seconds,
                started_at=latest.started_at or now_text(),
            )
        except JobLost:
            return None

    async def run(self, job: str) -> model.Checkpoint | None:
        """Work on `job` until it ends; None if another lease owner holds it."""
        checkpoint = await self.claim(job)
        if checkpoint is None:
            return None
        self.progress(checkpoint)
        latest = [checkpoint]  # the job's latest checkpoint, kept up to date by _run
        try:
            return await self._run(job, latest)
        except JobLost:  # another worker advanced the job: it is theirs now
            log.warning("import_lost", job=job)
            return None
        except (asyncio.CancelledError, StorageUnavailable):
            raise
        except Exception as exc:  # the job cannot go on: it fails, the others run
            log.exception("import_job_failed", job=job)
            reason = exc.detail if isinstance(exc, VellumError) else type(exc).__name__
            try:
                return await self._finish(
                    job, latest[0], "failed", f"the job could not go on: {reason}"
                )
            except JobLost:
                return None

    async def _run(self, job: str, latest: list[model.Checkpoint]) -> model.Checkpoint | None:
        checkpoint = latest[0]
        try:
            manifest = await self.jobs.manifest(job)
        except ObjectNotFound:
            return await self._finish(job, checkpoint, "failed", "the job's manifest is missing")
        try:
            found = await self.jobs.store.head(manifest.input_key)
        except ObjectNotFound:
            return await self._finish(
                job, checkpoint, "failed", f"input {manifest.input_key} is missing"
            )
        if (reason := _not_the_input(manifest, found)) is not None:
            return await self._finish(job, checkpoint, "failed", reason)
        # Read from its first byte in this run, the input is hashed on the way (inputs.py).
        digest = hashlib.sha256() if checkpoint.next_offset == 0 else None
        lines = read_lines(
            self.jobs.store,
            manifest.input_key,
            start=checkpoint.next_offset,
            first_line=checkpoint.next_line,
            limit=self.max_line_bytes,
            size=found.size,
            if_match=manifest.input_etag,
            on_window=None if digest is None else digest.update,
        )
        chunk: list[Line] = []  # lines read and not yet done
        held = 0  # their bytes
        try:
            async for line in lines:
                chunk.append(line)
                held += len(line.data or b"")
                if len(chunk) >= CHUNK_LINES or held >= CHUNK_BYTES:
                    if await self.jobs.cancelled(job):
                        return await self._finish(job, checkpoint, "cancelled")
                    checkpoint, chunk = await self._chunk(job, manifest, checkpoint, chunk)
                    held = sum(len(left.data or b"") for left in chunk)
                    latest[0] = checkpoint
            while chunk:  # the last lines, in as many chunks as their time asks for
                if await self.jobs.cancelled(job):  # also a job shorter than one chunk
                    return await self._finish(job, checkpoint, "cancelled")
                checkpoint, chunk = await self._chunk(job, manifest, checkpoint, chunk)
                latest[0] = checkpoint
        except JobLost:
            log.warning("import_lost", job=job)
            return None
        except asyncio.CancelledError:  # shutting down: let the next owner start at once
            await asyncio.shield(self._release(job, checkpoint))
            raise
        read = None if digest is None else digest.hexdigest()
        if (reason := await input_changed(self.jobs.store, manifest, read)) is not None:
            return await self._finish(job, checkpoint, "failed", reason)
        return await self._finish(job, checkpoint, "succeeded")

    async def _release(self, job: str, checkpoint: model.Checkpoint) -> None:
        with contextlib.suppress(JobLost, StorageError):  # else the lease simply expires
            await self.jobs.advance(
                job, checkpoint, state="queued", lease_owner=None, lease_expires=0.0
            )

    async def _finish(
        self, job: str, checkpoint: model.Checkpoint, state: model.State, error: str | None = None
    ) -> model.Checkpoint:
        final = await self.jobs.advance(
            job,
            checkpoint,
            state=state,
            lease_owner=None,
            lease_expires=0.0,
            finished_at=now_text(),
            error=error,
        )
        self.progress(final)
        log.info("import_finished", job=job, state=state, **msgspec.structs.asdict(final.counts))
        return final

    async def _chunk(
        self,
        job: str,
        manifest: model.Manifest,
        checkpoint: model.Checkpoint,
        chunk: list[Line],
    ) -> tuple[model.Checkpoint, list[Line]]:
        """Ingest the lines of `chunk` that fit in `chunk_seconds` while a heartbeat renews
        the lease, then checkpoint them; the lines not taken are returned, for the next."""
        held = [checkpoint]  # the latest checkpoint: the heartbeat's, then the chunk's
        stop = asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(job, held, stop))
        try:
            done, taken = await self._ingest_chunk(job, manifest, chunk)
        finally:
            stop.set()  # a renewal in flight completes (its checkpoint must be known)
            await asyncio.shield(heartbeat)
        checkpoint = held[0]
        checkpoint = await self.jobs.advance(
            job,
            checkpoint,
            next_line=chunk[taken - 1].number + 1,
            next_offset=chunk[taken - 1].end,
            counts=checkpoint.counts + done,
            lease_expires=time.time() + self.lease_seconds,
        )
        self.progress(checkpoint)
        self.on_chunk(done)
        return checkpoint, chunk[taken:]

    async def _heartbeat(self, job: str, held: list[model.Checkpoint], stop: asyncio.Event) -> None:
        """Renew the lease every third of its length while a chunk runs, so a chunk
        slower than the lease is not taken over by another worker (a renewal is a
        checkpoint with the same progress and a later expiry)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_seconds / 3):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                held[0] = await self.jobs.advance(
                    job, held[0], lease_expires=time.time() + self.lease_seconds
                )
            except JobLost:
                return  # the chunk's own checkpoint will find out
            except StorageError as exc:  # try again at the next beat
                log.warning("import_lease_renewal_failed", job=job, detail=exc.detail)

    async def _ingest_chunk(
        self, job: str, manifest: model.Manifest, chunk: list[Line]
    ) -> tuple[model.Counts, int]:
        """Ingest this job's lines of `chunk` in order, `concurrency` at once, starting
        none once `chunk_seconds` have passed (but the first); the counts, and how many
        lines of `chunk` were taken (the rest go to the next chunk)."""
        started = time.monotonic()
        outcomes: dict[int, dict[str, object]] = {}
        firsts: set[str] = set()  # ids of the documents of the lines taken
        ingesting: list[asyncio.Task[dict[str, object]]] = []
        taken = len(chunk)
        try:
            for index, line in enumerate(chunk):
                if manifest.shard is not None and not manifest.shard.owns(line.number):
                    continue
                try:
                    verified = self._verify(line)
                except RequestError as error:
                    outcomes[line.number] = {"line": line.number, "problem": error.problem()}
                    continue
                document_id = document_id_of(verified)
                if document_id in firsts:  # the same request as an earlier line
                    outcomes[line.number] = {
                        "line": line.number,
                        "id": document_id,
                        "outcome": "duplicate",
                    }
                    continue
                await self.limit.acquire()
                if ingesting and time.monotonic() - started >= self.chunk_seconds:
                    self.limit.release()
                    taken = index
                    break
                firsts.add(document_id)
                ingesting.append(
                    asyncio.create_task(self._ingest(job, line, verified, manifest.submitter))
                )
            ingested = await asyncio.gather(*ingesting)
        except BaseException:  # cancelled, or storage away: no line runs on unowned
            for task in ingesting:
                task.cancel()
            raise
        outcomes.update((entry["line"], entry) for entry in ingested)  # type: ignore[misc]
        mine = [
            line
            for line in chunk[:taken]
            if manifest.shard is None or manifest.shard.owns(line.number)
        ]
        ordered = [outcomes[number] for number in sorted(outcomes)]
        errors = [outcome for outcome in ordered if "problem" in outcome]
        results = [outcome for outcome in ordered if "outcome" in outcome]
        first = chunk[0].number
        for kind, entries in (("errors", errors), ("results", results)):
            if entries:
                data = b"".join(_encoder.encode(entry) + b"\n" for entry in entries)
                await self.jobs.store.put_if_absent(
                    model.chunk_key(job, kind, first),  # type: ignore[arg-type]
                    data,
                    sha256=hashlib.sha256(data).digest(),
                    content_type=APPLICATION_NDJSON,
                )
        created = sum(1 for entry in results if entry["outcome"] == "created")
        done = model.Counts(
            total=len(mine),
            created=created,
            duplicates=len(results) - created,
            failed=len(errors),
        )
        return done, taken

    def _verify(self, line: Line) -> Submission:
        if line.data is None or line.size > self.max_line_bytes:
            raise _too_long(line, self.max_line_bytes)
        return submission.from_json_document(line.data, max_metadata_bytes=self.max_metadata_bytes)

    async def _ingest(
        self, job: str, line: Line, verified: Submission, submitter: str | None
    ) -> dict[str, object]:
        """One line's outcome; it holds one of `concurrency` slots, taken for it by
        `_ingest_chunk`, until it ends."""
        try:
            outcome = await self.ingestor.ingest(
                verified,
                Arrival(
                    channel="import",
                    import_job=job,
                    import_line=line.number,
                    submitter=submitter,
                ),
            )
        except StorageUnavailable:
            raise  # storage away: the chunk is done again from its first line
        except VellumError as error:
            return {"line": line.number, "problem": error.problem()}
        except Exception:
            log.exception("import_line_error", job=job, line=line.number)
            unexpected = VellumError(
                f"line {line.number} could not be ingested: an unexpected error "
                "(the server's log has it)"
            )
            return {"line": line.number, "problem": unexpected.problem()}
        finally:
            self.limit.release()
        record = outcome.record
        mine = (record.provenance.import_job, record.provenance.import_line) == (job, line.number)
        return {
            "line": line.number,
            "id": record.id,
            "outcome": "created" if outcome.created or mine else "duplicate",
        }


def _not_the_input(manifest: model.Manifest, found: ObjectInfo) -> str | None:
    """Why the object at the input's key is not the job's input (its size or its ETag
    differ from the manifest's), or None."""
    if found.size != manifest.input_bytes:
        return (
            f"input {manifest.input_key} is {found.size} bytes, not the "
            f"{manifest.input_bytes} it had when the job was made: it changed"
        )
    if manifest.input_etag is not None and found.etag != manifest.input_etag:
        return (
            f"input {manifest.input_key} was replaced since the job was made (its ETag is "
            f"{found.etag}, not {manifest.input_etag}): it changed"
        )
    return None


def _too_long(line: Line, limit: int) -> RequestError:
    return PayloadTooLarge(
        f"line {line.number} is {line.size} bytes; the per-document limit is {limit}",
        limit_bytes=limit,
    )
