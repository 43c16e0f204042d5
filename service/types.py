"""msgspec Structs of the public API and of the archival record (`vellum.article/1`).

The same types decode requests, encode responses, and are written to the archive, so
what is documented in docs/format.md is exactly what these classes say. Record fields
are always present (null when empty) so readers in any language need no defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

SCHEMA_NAME = "vellum.article"
SCHEMA_MAJOR = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_MAJOR}"

Channel = Literal["http", "import"]
# Document ids and import job ids alike: 32 characters of lowercase RFC 4648 base32
# (160 bits; service.ids makes and checks them).
ID_PATTERN = "[a-z2-7]{32}"
DocumentId = Annotated[
    str, Meta(pattern=f"^{ID_PATTERN}$", description="32 characters of lowercase base32")
]
JobId = Annotated[str, Meta(pattern=f"^{ID_PATTERN}$", description="32 characters of base32")]
Sha256Hex = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="SHA-256, lowercase hex")]
Version = Annotated[int, Meta(ge=1)]
Offset = Annotated[int, Meta(ge=0)]


class Source(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the submitter asserts about the article; kept exactly as asserted."""

    url: str | None = None
    title: str | None = None
    authors: list[str] | None = None
    publisher: str | None = None
    published_at: str | None = None  # verbatim, never parsed
    language: str | None = None
    external_id: str | None = None


class DocumentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The JSON body of `POST /v1/documents` and one line of an import."""

    text: str
    source: Source | None = None
    metadata: dict[str, Any] | None = None


class Original(msgspec.Struct, frozen=True):
    """The archived original bytes, content-addressed by their SHA-256."""

    sha256: Sha256Hex
    size: Offset
    media_type: str
    charset: str
    key: str  # storage key, relative to the configured prefix


class Software(msgspec.Struct, frozen=True):
    name: str
    version: str


class DerivedFrom(msgspec.Struct, frozen=True):
    original_sha256: Sha256Hex
    previous_version: Version | None


class Provenance(msgspec.Struct, frozen=True, omit_defaults=True):
    received_at: str  # RFC 3339, UTC, microseconds
    channel: Channel
    submitter: str | None  # API key id, never the key
    request_id: str | None
    import_job: str | None
    import_line: Version | None
    software: Software
    normalizer_version: str
    schema_version: str
    derived_from: DerivedFrom
    # When this version's write began (RFC 3339, UTC, microseconds): received_at for
    # version 1, the start of writing a reprocessed version; the change feed's `at`
    # (docs/format.md, "Indexes"). Absent only from records written before it existed.
    began_at: str | None = None


Span = tuple[Offset, Offset]  # [start, end) in code points of `text`

# Blocks, quotes and marks hold only numbers and strings, so they can never be part of a
# reference cycle: `gc=False` keeps them out of the garbage collector, which otherwise
# walks every one of the millions a hostile megabyte makes, again and again (bench
# hostile phase: the 1 MB/10 KB cost ratio of `...` runs fell from 1.6-1.95 to 1.0-1.2).


class Headline(msgspec.Struct, frozen=True):
    text: str
    source: Literal["asserted", "detected"]


class Block(msgspec.Struct, frozen=True, gc=False):
    """A paragraph, or a labelled section (`EDITOR’S NOTE: …`), in reading order."""

    kind: Literal["paragraph", "section"]
    span: Span
    label: str | None  # a section's label without the colon


class Quote(msgspec.Struct, frozen=True, gc=False):
    span: Span  # the quoted words, without the marks
    depth: Version  # 1 at top level, 2 inside another quote, ...
    open: str  # the opening mark
    close: str | None  # the closing mark; null when the quote is never closed
    blocks: tuple[Offset, Offset]  # first and last block the quote runs over


class Marked(msgspec.Struct, frozen=True, gc=False):
    """A bracketed insertion (span inside the brackets) or an ellipsis (span of the mark)."""

    span: Span


class Language(msgspec.Struct, frozen=True):
    code: Annotated[str, Meta(pattern="^[a-z]{2}$", description="ISO 639-1")]
    confidence: Annotated[float, Meta(ge=0, le=1)]


class Stats(msgspec.Struct, frozen=True):
    chars: Offset
    words: Offset
    paragraphs: Offset
    quotes: Offset


class Fingerprints(msgspec.Struct, frozen=True):
    sha256: Sha256Hex  # of `text` as UTF-8
    simhash: Annotated[str, Meta(pattern="^[0-9a-f]{16}$")]  # 64-bit near-duplicate hash


class Record(msgspec.Struct, frozen=True, tag_field="schema", tag=SCHEMA):
    """One immutable version of a document's archival record (`"schema"` comes first)."""

    id: DocumentId
    version: Version
    original: Original
    text: str
    headline: Headline | None
    blocks: list[Block]
    quotes: list[Quote]
    insertions: list[Marked]
    ellipses: list[Marked]
    language: Language | None
    stats: Stats
    fingerprints: Fingerprints
    source: Source
    metadata: dict[str, Any] | None
    provenance: Provenance


class OriginalSummary(msgspec.Struct, frozen=True):
    sha256: Sha256Hex
    size: Offset
    media_type: str


class DocumentLinks(msgspec.Struct, frozen=True):
    self: str
    original: str
    provenance: str
    versions: str


class NearDuplicate(msgspec.Struct, frozen=True):
    """A document whose simhash differs from another's in `distance` bits (SPEC §9)."""

    id: DocumentId
    distance: Annotated[int, Meta(ge=0, le=64)]


class DocumentReceipt(msgspec.Struct, frozen=True):
    """The body of a 201 (created) or 200 (duplicate) answer to an ingest.
    `near_duplicates`: the documents within 3 bits of its simhash, nearest first."""

    id: DocumentId
    version: Version
    schema: str
    original: OriginalSummary
    near_duplicates: list[NearDuplicate]
    links: DocumentLinks

    @classmethod
    def of(cls, record: Record, near_duplicates: list[NearDuplicate]) -> DocumentReceipt:
        base = f"/v1/documents/{record.id}"
        return cls(
            id=record.id,
            version=record.version,
            schema=SCHEMA,
            original=OriginalSummary(
                sha256=record.original.sha256,
                size=record.original.size,
                media_type=record.original.media_type,
            ),
            near_duplicates=near_duplicates,
            links=DocumentLinks(
                self=base,
                original=f"{base}/original",
                provenance=f"{base}/provenance",
                versions=f"{base}/versions",
            ),
        )


class VersionEntry(msgspec.Struct, frozen=True):
    version: Version
    href: str


class VersionList(msgspec.Struct, frozen=True):
    """The body of `GET /v1/documents/{id}/versions`, oldest version first."""

    id: DocumentId
    latest: Version
    versions: list[VersionEntry]


class Problem(msgspec.Struct, frozen=True):
    """An RFC 9457 problem; members naming what was wrong (`field`, `limit_bytes`, ...)
    are added beside these."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok", "unavailable", "draining"]
    detail: str | None = None


record_encoder = msgspec.json.Encoder()
record_decoder = msgspec.json.Decoder(Record)
