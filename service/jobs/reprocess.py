"""`vellum reprocess`: new record versions made by the current normalizer.

For each document, the latest record is read; if the current normalizer made it, the
document is skipped. Otherwise its original is decoded again in the charset the record
names and analysed, and the result is written as the next version (a conditional create:
a version another worker wrote first is left as it is). Old versions stay untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import msgspec

from service import media
from service.analysis import Analyzer
from service.archive import Archive
from service.ingest import rebuild_record
from service.normalize import NORMALIZER_VERSION
from service.storage.port import BulkStore


class ReprocessReport(msgspec.Struct, frozen=True):
    written: list[str]  # ids that got a new version
    current: list[str]  # ids whose latest version is already this normalizer's


async def document_ids(store: BulkStore) -> list[str]:
    prefixes = await store.list_prefixes("records/")
    return [prefix.removeprefix("records/").rstrip("/") for prefix in prefixes]


async def reprocess(
    archive: Archive,
    analyzer: Analyzer,
    ids: Sequence[str],
    *,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> ReprocessReport:
    limit = asyncio.Semaphore(concurrency)
    written: list[str] = []
    current: list[str] = []

    async def one(document_id: str) -> None:
        async with limit:
            latest = await archive.record(document_id)
            if latest.provenance.normalizer_version == NORMALIZER_VERSION:
                current.append(document_id)
                return
            original = await archive.original(latest)
            decoded = media.decode(original, media.resolve_charset(latest.original.charset))
            analysis = await analyzer.analyze(decoded, latest.source.title)
            following = rebuild_record(latest, analysis)
            if await archive.put_record(following):
                written.append(document_id)
            else:
                current.append(document_id)
        if progress is not None:
            progress(len(written) + len(current))

    await asyncio.gather(*(one(document_id) for document_id in ids))
    return ReprocessReport(written=sorted(written), current=sorted(current))
