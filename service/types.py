"""msgspec Structs of the public API and of the archival record (`vellum.article/1`).

The same types decode requests, encode responses, and are written to the archive, so
what is documented in docs/format.md is exactly what these classes say. Record fields
are always present (null when empty) so readers in any language need no defaults.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_NAME = "vellum.article"
SCHEMA_MAJOR = 1
SCHEMA = f"{SCHEMA_NAME}/{SCHEMA_MAJOR}"

Channel = Literal["http", "import"]


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

    sha256: str  # lowercase hex
    size: int
    media_type: str
    charset: str
    key: str  # storage key, relative to the configured prefix


class Software(msgspec.Struct, frozen=True):
    name: str
    version: str


class DerivedFrom(msgspec.Struct, frozen=True):
    original_sha256: str
    previous_version: int | None


class Provenance(msgspec.Struct, frozen=True):
    received_at: str  # RFC 3339, UTC, microseconds
    channel: Channel
    submitter: str | None  # API key id, never the key
    request_id: str | None
    import_job: str | None
    import_line: int | None
    software: Software
    normalizer_version: str
    schema_version: str
    derived_from: DerivedFrom


class Record(msgspec.Struct, frozen=True):
    """One immutable version of a document's archival record."""

    schema: str
    id: str
    version: int
    original: Original
    text: str
    source: Source
    metadata: dict[str, Any] | None
    provenance: Provenance


class OriginalSummary(msgspec.Struct, frozen=True):
    sha256: str
    size: int
    media_type: str


class DocumentLinks(msgspec.Struct, frozen=True):
    self: str
    original: str


class DocumentReceipt(msgspec.Struct, frozen=True):
    """The body of a 201 (created) or 200 (duplicate) answer to an ingest."""

    id: str
    version: int
    schema: str
    original: OriginalSummary
    links: DocumentLinks

    @classmethod
    def of(cls, record: Record) -> DocumentReceipt:
        base = f"/v1/documents/{record.id}"
        return cls(
            id=record.id,
            version=record.version,
            schema=record.schema,
            original=OriginalSummary(
                sha256=record.original.sha256,
                size=record.original.size,
                media_type=record.original.media_type,
            ),
            links=DocumentLinks(self=base, original=f"{base}/original"),
        )


class Health(msgspec.Struct, frozen=True):
    status: Literal["ok", "unavailable", "draining"]
    detail: str | None = None


record_encoder = msgspec.json.Encoder()
record_decoder = msgspec.json.Decoder(Record)
