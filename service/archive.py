"""The archive: Vellum's objects laid out in an `ObjectStore` (see docs/format.md).

    originals/sha256/<hex>                 the exact original bytes, content-addressed
    records/<id>/<version, 9 digits>.json  one immutable record version
    records/<id>/latest.json               the head: the newest version's bytes, again

Knows keys and encodings; knows nothing of HTTP. Translates the store's ObjectNotFound
into DocumentNotFound / VersionNotFound, and checks every original it reads against
the digest its record names. An original that exists already when it is stored is
read back and hashed before it is reused (one GET per duplicate); one that fails (other
bytes, no SHA-256 kept with it) is repaired by a replace conditional on its ETag, never
silently reused.

The head makes a read of the latest version one GET. It is derived: a version is created
first (that makes it visible), then the head is moved to it, a create for version 1 and
a replace conditional on the head's ETag later, never back to an older version. A reader
that finds no head (a document written before heads existed, or whose writer died between
its two writes) takes the newest version from the listing, as before.
"""

from __future__ import annotations

import hashlib

import msgspec
import structlog

from service import ids
from service.errors import (
    DocumentNotFound,
    IntegrityError,
    ObjectNotFound,
    VersionNotFound,
)
from service.media import APPLICATION_JSON
from service.storage.port import ObjectStore
from service.types import Record, record_decoder, record_encoder

RECORD_MEDIA_TYPE = APPLICATION_JSON
_HEAD_ATTEMPTS = 5  # moves of the head lost to other writers before giving up
log = structlog.get_logger("vellum")


class _Version(msgspec.Struct):
    version: int


_version_decoder = msgspec.json.Decoder(_Version)


class StoredRecord(msgspec.Struct, frozen=True):
    """A record version exactly as archived: served byte for byte."""

    document_id: str
    version: int
    data: bytes


class Archive:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def put_original(self, data: bytes, *, sha256: bytes, media_type: str) -> str:
        """Store an original unless the same bytes are archived already; return its key."""
        key = ids.original_key(sha256.hex())
        for _ in range(3):
            if await self.store.put_if_absent(key, data, sha256=sha256, content_type=media_type):
                return key
            try:  # reused only once its bytes are read back and match
                intact = hashlib.sha256(await self.store.get(key)).digest() == sha256
            except IntegrityError:
                intact = False
            except ObjectNotFound:
                continue  # deleted since: create it again
            if intact:
                return key
            try:
                found = await self.store.head(key)
            except ObjectNotFound:
                continue
            log.error("original_repaired", key=key, size=found.size, kept_sha256=found.sha256)
            if await self.store.replace(
                key, data, sha256=sha256, content_type=media_type, if_match=found.etag
            ):
                return key
        raise IntegrityError(f"{key} keeps changing under Vellum; it cannot be stored", key=key)

    async def put_record(self, record: Record) -> bool:
        """Create one record version, then move the head to it. False if that version
        exists already (its writer moves the head)."""
        data = record_encoder.encode(record)
        sha256 = hashlib.sha256(data).digest()
        key = ids.record_key(record.id, record.version)
        if not await self.store.put_if_absent(
            key, data, sha256=sha256, content_type=RECORD_MEDIA_TYPE
        ):
            return False
        await self.advance_head(record.id, record.version, data)
        return True

    async def advance_head(self, document_id: str, version: int, data: bytes) -> bool:
        """Make the head hold `data`, version `version`'s bytes, unless it holds a newer
        version. True if this call wrote it."""
        key = ids.latest_key(document_id)
        sha256 = hashlib.sha256(data).digest()

        async def create() -> bool:
            return await self.store.put_if_absent(
                key, data, sha256=sha256, content_type=RECORD_MEDIA_TYPE
            )

        if version == 1 and await create():
            return True  # a new document has no head; should one exist, it is compared
        for _ in range(_HEAD_ATTEMPTS):
            try:
                found = await self.store.head(key)
            except ObjectNotFound:
                if await create():
                    return True
                continue  # another writer's head came first: compare with it
            if found.sha256 == sha256.hex():
                return False
            held = await self._head_version(key, found.sha256)
            if held is None:
                continue  # replaced between the HEAD and the GET
            if held > version:
                return False
            if await self.store.replace(
                key, data, sha256=sha256, content_type=RECORD_MEDIA_TYPE, if_match=found.etag
            ):
                return True
        raise IntegrityError(f"{key} keeps changing under Vellum; it was not moved", key=key)

    async def _head_version(self, key: str, sha256: str | None) -> int | None:
        """The version the head holds (0 when it is unreadable, to be rewritten), or None
        when it is no longer the object whose SHA-256 is `sha256`."""
        try:
            data = await self.store.get(key)
        except ObjectNotFound:
            return None
        except IntegrityError:
            return 0
        if hashlib.sha256(data).hexdigest() != sha256:
            return None
        try:
            return _version_decoder.decode(data).version
        except msgspec.DecodeError:
            return 0

    async def head_record(self, document_id: str) -> StoredRecord | None:
        """The latest version as the head holds it, in one GET; None when there is no
        head or it cannot be read (the versions are authoritative)."""
        key = ids.latest_key(document_id)
        try:
            data = await self.store.get(key)
            version = _version_decoder.decode(data).version
        except ObjectNotFound:
            return None
        except (IntegrityError, msgspec.DecodeError) as exc:
            log.warning("head_unreadable", key=key, error=str(exc))
            return None
        return StoredRecord(document_id=document_id, version=version, data=data)

    async def versions(self, document_id: str) -> list[int]:
        keys = await self.store.list_keys(ids.records_prefix(document_id))
        versions = sorted(ids.version_of(key) for key in keys if ids.is_version_key(key))
        if not versions:
            raise DocumentNotFound(f"no document {document_id}", id=document_id)
        return versions

    async def stored_record(self, document_id: str, version: int | None = None) -> StoredRecord:
        """The given version, or the latest one (one GET of the head when there is one)."""
        if version is None:
            if (head := await self.head_record(document_id)) is not None:
                return head
            version = (await self.versions(document_id))[-1]
        try:
            data = await self.store.get(ids.record_key(document_id, version))
        except ObjectNotFound:
            if version == 1:
                raise DocumentNotFound(f"no document {document_id}", id=document_id) from None
            await self.versions(document_id)  # DocumentNotFound if there is none at all
            raise VersionNotFound(
                f"document {document_id} has no version {version}",
                id=document_id,
                version=version,
            ) from None
        return StoredRecord(document_id=document_id, version=version, data=data)

    async def record(self, document_id: str, version: int | None = None) -> Record:
        stored = await self.stored_record(document_id, version)
        return record_decoder.decode(stored.data)

    async def original(self, record: Record) -> bytes:
        try:
            data = await self.store.get(record.original.key)
        except ObjectNotFound:
            raise IntegrityError(
                f"the original of {record.id} is missing from storage", id=record.id
            ) from None
        if hashlib.sha256(data).hexdigest() != record.original.sha256:
            raise IntegrityError(
                f"the original of {record.id} does not match its recorded SHA-256",
                id=record.id,
            )
        return data
