"""The storage port: what Vellum needs from an object store, and nothing more.

Keys are relative to the archive (the adapter adds its configured prefix, in the form
`key_prefix` gives it). Objects are never overwritten: `put_if_absent` is the only write
(but for `replace`, conditional on the ETag of the object it replaces: the repair of an
object found rotten, and the move of a document's head to a newer version), a
conditional create whose body the server verifies against the SHA-256 the caller
computed; that digest is also kept with the object (user metadata `sha256`), so later
corruption can be found.

Errors: `ObjectNotFound` for a missing key, `StorageUnavailable` when the store cannot be
reached or answers with a server error, `StorageError` for anything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

import msgspec


def key_prefix(configured: str) -> str:
    """The prefix of every key of an archive configured with `configured` (VELLUM_S3_PREFIX):
    without slashes around it, then one slash; empty for none."""
    prefix = configured.strip("/")
    return f"{prefix}/" if prefix else ""


class ObjectInfo(msgspec.Struct, frozen=True):
    """What a HEAD tells of an object: its length, the SHA-256 kept with it (None when
    it has none: not written by Vellum), and its ETag (for a conditional replace)."""

    size: int
    sha256: str | None
    etag: str


class ObjectStore(Protocol):
    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        """Create `key` holding `data` unless it exists. True if this call created it."""

    async def get(self, key: str) -> bytes:
        """The object's bytes; ObjectNotFound if there is none, IntegrityError if they no
        longer match the SHA-256 kept with them (never silently wrong bytes)."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, in lexicographic order."""

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        """At most `limit` (1-1000: one ListObjectsV2 call) keys under `prefix` that sort
        after `start_after`, in lexicographic order: one page of a listing that may be
        far too long to take whole (the indexes of service.finding). SeaweedFS orders by
        "folder" (`a/1` before `a#1`) and skips every key under a folder named as
        `start_after`: callers resume after a key, or a name no key has."""

    async def delete(self, key: str) -> None:
        """Remove `key` (nothing happens when there is none). Vellum deletes only derived
        objects it can rebuild: index entries whose record does not exist."""

    async def head(self, key: str) -> ObjectInfo:
        """The object's length, kept SHA-256 and ETag; ObjectNotFound if there is none."""

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        """Overwrite `key` only while its ETag is `if_match` (the repair of an object that
        failed its check, the move of a head); False if it changed or went meanwhile."""

    async def check(self) -> None:
        """Return if the store is reachable and the bucket exists, else raise."""


class Upload(msgspec.Struct, frozen=True):
    size: int
    sha256: bytes


class OpenUpload(msgspec.Struct, frozen=True):
    """A multipart upload begun and neither completed nor aborted (ListMultipartUploads)."""

    key: str
    upload_id: str
    initiated: float  # Unix time


class BulkStore(ObjectStore, Protocol):
    """What bulk jobs need beyond the `ObjectStore`: inputs too large to hold in memory."""

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, limit: int
    ) -> Upload:
        """Stream `chunks` into a new object (multipart), hashing them on the way.

        PayloadTooLarge once more than `limit` bytes arrive; nothing is left behind then.
        """

    async def get_range(
        self, key: str, start: int, end: int, *, if_match: str | None = None
    ) -> bytes:
        """Bytes [start, end) of an object (fewer at its end). With `if_match`, only of
        the object whose ETag that is: IntegrityError once it was replaced (S3's 412)."""

    async def size(self, key: str) -> int:
        """The object's length in bytes; ObjectNotFound if there is none."""

    async def list_prefixes(self, prefix: str) -> list[str]:
        """The immediate "folders" under `prefix` (keys up to the next `/`), sorted."""

    def prefix_pages(self, prefix: str) -> AsyncIterator[list[str]]:
        """The same "folders" a listing page at a time, each page read when the last
        was used up: for runs over every document, which must not hold every id."""

    async def open_uploads(self, prefix: str) -> list[OpenUpload]:
        """The multipart uploads under `prefix` still open (begun, not yet completed or
        aborted): an upload whose process died keeps its parts until it is aborted."""

    async def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort an open multipart upload and drop its parts (no error if it is gone)."""
