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
so the run holds no task per document and no listing of every id.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

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
    written: list[str]  # ids that got a new version
    current: list[str]  # ids whose latest version is already this normalizer's
    failed: list[Failure]  # ids that could not be reprocessed, with why


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
) -> ReprocessReport:
    writer = indexes or IndexWriter(archive)
    written: list[str] = []
    current: list[str] = []
    failed: list[Failure] = []

    async def attempt(document_id: str) -> None:
        try:
            await reprocess_one(document_id)
        except StorageUnavailable:
            raise
        except VellumError as error:
            failed.append(Failure(document_id, f"{error.slug}: {error.detail}"))
        if progress is not None:
            progress(len(written) + len(current) + len(failed))

    async def reprocess_one(document_id: str) -> None:
        latest = await archive.record(document_id)
        if latest.provenance.normalizer_version == NORMALIZER_VERSION:
            current.append(document_id)
            return
        original = await archive.original(latest)
        decoded = media.decode(original, media.resolve_charset(latest.original.charset))
        analysis = await analyzer.analyze(decoded, latest.source.title)
        following = rebuild_record(latest, analysis, utc_now())
        if await writer.publish(following) is None:
            written.append(document_id)
        else:
            current.append(document_id)

    await each(ids, attempt, concurrency)
    return ReprocessReport(
        written=sorted(written),
        current=sorted(current),
        failed=sorted(failed, key=lambda failure: failure.id),
    )
