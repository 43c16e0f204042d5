"""`vellum reprocess`: new record versions made by the current normalizer.

For each document, the latest record is read; if the current normalizer made it, the
document is skipped. Otherwise its original is decoded again in the charset the record
names and analysed, and the result is written as the next version with its index
entries (service.finding.entries; the record a conditional create:
a version another process wrote first is left as it is). Old versions stay untouched.

A document that cannot be reprocessed (its original missing or rotten, its record
unreadable, its text refused by the analysis) is reported with why, and the others go on;
only storage going away stops the run. `concurrency` documents are in hand at once, taken
in turn from `ids` (a list, or `document_ids`, which reads the listing a page at a time),
so the run holds no task per document and no listing of every id; its report counts the
documents handled and keeps only the failed ones (`on_document` hears of each as it is
done), so its memory does not grow with the archive.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Literal

import msgspec

from service import media
from service.analysis import Analyzer
from service.archive import Archive
from service.errors import StorageUnavailable, VellumError
from service.finding.entries import IndexWriter
from service.ingest import rebuild_record
from service.jobs.takers import each
from service.normalize import NORMALIZER_VERSION
from service.storage.port import BulkStore
from service.timestamps import utc_now


class Failure(msgspec.Struct, frozen=True):
    id: str
    problem: str  # the problem's slug and detail


class ReprocessReport(msgspec.Struct, frozen=True):
    written: int  # documents that got a new version
    current: int  # documents whose latest version is already this normalizer's
    failed: list[Failure]  # documents that could not be reprocessed, with why


Outcome = Literal["written", "current", "failed"]


async def document_ids(store: BulkStore) -> AsyncIterator[str]:
    """Every document's id, in order, read a listing page at a time (never all at once)."""
    async for page in store.prefix_pages("records/"):
        for prefix in page:
            yield prefix.removeprefix("records/").rstrip("/")


async def reprocess(
    archive: Archive,
    analyzer: Analyzer,
    ids: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
    indexes: IndexWriter | None = None,
    on_document: Callable[[str, Outcome], None] | None = None,
) -> ReprocessReport:
    writer = indexes or IndexWriter(archive)
    done: dict[Outcome, int] = {"written": 0, "current": 0, "failed": 0}
    failed: list[Failure] = []

    async def attempt(document_id: str) -> None:
        outcome: Outcome
        try:
            outcome = await reprocess_one(document_id)
        except StorageUnavailable:
            raise
        except VellumError as error:
            failed.append(Failure(document_id, f"{error.slug}: {error.detail}"))
            outcome = "failed"
        done[outcome] += 1
        if on_document is not None:
            on_document(document_id, outcome)
        if progress is not None:
            progress(sum(done.values()))

    async def reprocess_one(document_id: str) -> Outcome:
        latest = await archive.record(document_id)
        if latest.provenance.normalizer_version == NORMALIZER_VERSION:
            return "current"
        original = await archive.original(latest)
        decoded = media.decode(original, media.resolve_charset(latest.original.charset))
        analysis = await analyzer.analyze(decoded, latest.source.title)
        following = rebuild_record(latest, analysis, utc_now())
        return "written" if await writer.publish(following) is None else "current"

    await each(ids, attempt, concurrency)
    return ReprocessReport(
        written=done["written"],
        current=done["current"],
        failed=sorted(failed, key=lambda failure: failure.id),
    )
