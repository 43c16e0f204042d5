"""The archive: Vellum's objects laid out in an `ObjectStore` (see docs/format.md).

    originals/sha256/<hex>                 the exact original bytes, content-addressed
    records/<id>/<version, 9 digits>.json  one immutable record version

Knows keys and encodings; knows nothing of HTTP. Translates the store's ObjectNotFound
into DocumentNotFound / VersionNotFound, and checks every original it reads against
the digest its record names. An original that exists already when it is stored is
read back and hashed before it is reused (one GET per duplicate); one that fails (other
bytes, no SHA-256 kept with it) is repaired by a replace conditional on its ETag, never
silently reused.
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
log = structlog.get_logger("vellum")


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
        """Create one record version. False if that version exists already."""
        data = record_encoder.encode(record)
        return await self.store.put_if_absent(
            ids.record_key(record.id, record.version),
            data,
            sha256=hashlib.sha256(data).digest(),
            content_type=RECORD_MEDIA_TYPE,
        )

    async def versions(self, document_id: str) -> list[int]:
        keys = await self.store.list_keys(ids.records_prefix(document_id))
        versions = sorted(ids.version_of(key) for key in keys if key.endswith(".json"))
        if not versions:
            raise DocumentNotFound(f"no document {document_id}", id=document_id)
        return versions

    async def stored_record(self, document_id: str, version: int | None = None) -> StoredRecord:
        """The given version, or the latest one."""
        if version is None:
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
