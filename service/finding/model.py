"""The answers of the lookups (SPEC §9): msgspec types, for the HTTP API and the CLI alike."""

from __future__ import annotations

from typing import Literal

import msgspec

from service.types import DocumentId, NearDuplicate, Offset, Sha256Hex, Version

Match = Literal["exact", "prefix", "host", "domain"]
MATCHES: tuple[Match, ...] = ("exact", "prefix", "host", "domain")
# What the metrics count lookups by (service.metrics): url_<match> for each match.
LOOKUP_KINDS = (*(f"url_{match}" for match in MATCHES), "external_id", "similar", "changes")


class OriginalRef(msgspec.Struct, frozen=True):
    sha256: Sha256Hex
    size: Offset


class Capture(msgspec.Struct, frozen=True):
    """One document found by URL or external id: its latest version, as asserted."""

    id: DocumentId
    version: Version
    received_at: str
    url: str | None
    title: str | None
    original: OriginalRef


class Captures(msgspec.Struct, frozen=True):
    """The body of `GET /v1/documents?url=…` and `?external_id=…`: newest first; `next`,
    passed back as `cursor`, the following page (null after the last)."""

    items: list[Capture]
    next: str | None


class Similar(msgspec.Struct, frozen=True):
    """The body of `GET /v1/documents/{id}/similar`: by distance, then id."""

    items: list[NearDuplicate]


class Change(msgspec.Struct, frozen=True):
    """A record version that became visible; `cursor` resumes the feed after it."""

    id: DocumentId
    version: Version
    at: str
    received_at: str
    cursor: str


class Changes(msgspec.Struct, frozen=True):
    """The body of `GET /v1/changes`: in order of `at`; `next` is always present."""

    items: list[Change]
    next: str
