"""The ingest service: the write protocol of a verified submission.

1. (done by `service.submission`) the request is verified; nothing is written otherwise;
2. the text is analysed (`service.analysis`), then the original is stored
   content-addressed, as a conditional create the server checks against our SHA-256; an
   original that exists already is reused. The analysis comes first so that one that
   fails (its deadline passed, its process died) leaves nothing in storage;
3. the record's index entries, then the record, which names the original's digest, are
   stored as conditional creates (`service.finding.entries`): only the record makes the
   document visible; then its head, a copy for reads of the latest (`service.archive`);
4. the caller answers 201 only after all of these returned.

A crash between 2 and 3 leaves at most an unreferenced original, which a retry reuses; one
between the record and its head a whole document, whose reads list its versions until
`vellum verify` or `vellum reindex` writes the head.
When the record exists already (a retry, a duplicate, a concurrent identical request
that won the race) the stored record is returned with `created=False`, unless the stored
record was made by this very request (the same channel and request id: a retry after a
lost answer), which gets `created=True` as its first answer would have.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from service import __version__, ids
from service.analysis import Analyzer
from service.archive import Archive
from service.finding.entries import IndexWriter
from service.normalize import NORMALIZER_VERSION, Analysis
from service.submission import Submission
from service.timestamps import rfc3339, utc_now
from service.types import (
    SCHEMA,
    Channel,
    DerivedFrom,
    Original,
    Provenance,
    Record,
    Software,
    Source,
)

SOFTWARE = Software(name="vellum", version=__version__)


class Arrival(msgspec.Struct, frozen=True, kw_only=True):
    """How a submission arrived (channel, request, submitter, import line): goes into the
    record's provenance. Not to be confused with `types.DocumentReceipt`, the body of the
    answer to an ingest."""

    channel: Channel
    request_id: str | None = None
    submitter: str | None = None
    import_job: str | None = None
    import_line: int | None = None


class IngestOutcome(msgspec.Struct, frozen=True):
    created: bool
    record: Record


def document_id_of(submission: Submission) -> str:
    """The id of the document a verified submission makes (service.ids)."""
    return ids.document_id(submission.sha256.hex(), submission.charset.codec, submission.source)


class Ingestor:
    def __init__(
        self,
        archive: Archive,
        analyzer: Analyzer,
        *,
        indexes: IndexWriter | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.archive = archive
        self.analyzer = analyzer
        self.indexes = indexes or IndexWriter(archive)
        self.clock = clock

    async def ingest(self, submission: Submission, arrival: Arrival) -> IngestOutcome:
        document_id = document_id_of(submission)
        title = submission.source.title if submission.source else None
        # Analysed first (in another process, see service.analysis): an analysis that
        # fails must leave no original behind.
        analysis = await self.analyzer.analyze(submission.text, title)
        key = await self.archive.put_original(
            submission.original, sha256=submission.sha256, media_type=submission.media_type
        )
        # Taken once the text is analysed and its original stored: the index entries and
        # the record must follow within the change feed's deadline (service.finding).
        received_at = self.clock()
        record = build_record(document_id, submission, key, arrival, received_at, analysis)
        stored = await self.indexes.publish(record)
        if stored is None:
            return IngestOutcome(created=True, record=record)
        # A retry of the request that created the record (its write committed, but the
        # answer was lost to a timeout) is told "created", as the first answer would have.
        same_request = arrival.request_id is not None and (
            stored.provenance.channel,
            stored.provenance.request_id,
        ) == (arrival.channel, arrival.request_id)
        return IngestOutcome(created=same_request, record=stored)


def build_record(
    document_id: str,
    submission: Submission,
    original_key: str,
    arrival: Arrival,
    received_at: datetime,
    analysis: Analysis,
) -> Record:
    """Version 1 of a document's record. Pure: the same arguments give the same record."""
    sha256 = submission.sha256.hex()
    source = submission.source or Source()
    return Record(
        id=document_id,
        version=1,
        original=Original(
            sha256=sha256,
            size=len(submission.original),
            media_type=submission.media_type,
            charset=submission.charset.label,
            key=original_key,
        ),
        source=source,
        metadata=submission.metadata,
        provenance=Provenance(
            received_at=rfc3339(received_at),
            channel=arrival.channel,
            submitter=arrival.submitter,
            request_id=arrival.request_id,
            import_job=arrival.import_job,
            import_line=arrival.import_line,
            software=SOFTWARE,
            normalizer_version=NORMALIZER_VERSION,
            schema_version=SCHEMA,
            derived_from=DerivedFrom(original_sha256=sha256, previous_version=None),
            began_at=rfc3339(received_at),
        ),
        **_analysis_fields(analysis),
    )


def rebuild_record(previous: Record, analysis: Analysis, began_at: datetime) -> Record:
    """The next version of a record, from its original analysed again by this normalizer.

    What was received and asserted is kept; the analysis, the software, the
    `derived_from` link to the previous version and `began_at` (this write's) are new.
    """
    provenance = msgspec.structs.replace(
        previous.provenance,
        software=SOFTWARE,
        normalizer_version=NORMALIZER_VERSION,
        schema_version=SCHEMA,
        derived_from=DerivedFrom(
            original_sha256=previous.original.sha256, previous_version=previous.version
        ),
        began_at=rfc3339(began_at),
    )
    return msgspec.structs.replace(
        previous,
        version=previous.version + 1,
        provenance=provenance,
        **_analysis_fields(analysis),
    )


def _analysis_fields(analysis: Analysis) -> dict[str, Any]:
    """The record's analysed fields: an Analysis's fields are named as the record's."""
    return msgspec.structs.asdict(analysis)
