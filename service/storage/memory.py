"""The storage port in memory: the S3 adapter's semantics without a server, for unit tests.

It keeps what S3 keeps and refuses what S3 refuses (tests/test_storage.py holds both
adapters to one contract):

- `put_if_absent` is a conditional create: a key that exists is never overwritten (S3's
  412: the call returns False); a body whose SHA-256 is not the one given is refused
  (S3's 400 BadDigest: StorageError) and nothing is stored;
- `replace` overwrites only while the object's ETag is the one given (S3's `If-Match`),
  and every write makes a new ETag;
- the SHA-256 is kept with each object and checked on `get` (IntegrityError when the bytes
  no longer match it); ranged reads are not checked, as with S3;
- a ranged read pinned to an ETag (`if_match`) fails once the object was replaced;
- listings are in key order, read in pages of `PAGE_KEYS` as S3 hands them out;
- `upload` stores nothing when it passes its limit or its chunks fail; while it runs it is
  an open upload (`open_uploads`), and one aborted meanwhile (`abort_upload`) fails as
  S3's NoSuchUpload does (ObjectNotFound).

Every call yields to the event loop once, so concurrent callers interleave as they would
with a real store. `damage(key, data)` replaces an object's bytes but not its digest: what
a disk fault does, for tests of what Vellum does then.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import itertools
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator

import msgspec

from service.errors import IntegrityError, ObjectNotFound, PayloadTooLarge, StorageError
from service.storage.port import ObjectInfo, OpenUpload, Upload

PAGE_KEYS = 1000  # S3's most keys per ListObjectsV2 page


class _Object(msgspec.Struct, frozen=True):
    data: bytes
    sha256: str  # hex, as the S3 adapter keeps it in the object's metadata
    content_type: str
    etag: str  # new with every write, as S3's


class MemoryStore:
    """`BulkStore` (and so `ObjectStore`) in this process's memory."""

    def __init__(self) -> None:
        self._objects: dict[str, _Object] = {}
        self._keys: list[str] = []  # sorted
        self._writes = itertools.count(1)
        self._uploads: dict[str, OpenUpload] = {}  # by upload id

    def _new(self, data: bytes, sha256: str, content_type: str) -> _Object:
        return _Object(bytes(data), sha256, content_type, f'"{next(self._writes)}"')

    def _create(self, key: str, stored: _Object) -> bool:
        if key in self._objects:
            return False
        self._objects[key] = stored
        bisect.insort(self._keys, key)
        return True

    def _object(self, key: str) -> _Object:
        try:
            return self._objects[key]
        except KeyError:
            raise ObjectNotFound(f"memory: no object {key}") from None

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        await asyncio.sleep(0)
        if hashlib.sha256(data).digest() != sha256:
            raise StorageError(f"memory: the body of {key} does not match its SHA-256 checksum")
        return self._create(key, self._new(data, sha256.hex(), content_type))

    async def head(self, key: str) -> ObjectInfo:
        await asyncio.sleep(0)
        stored = self._object(key)
        return ObjectInfo(size=len(stored.data), sha256=stored.sha256, etag=stored.etag)

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        await asyncio.sleep(0)
        if hashlib.sha256(data).digest() != sha256:
            raise StorageError(f"memory: the body of {key} does not match its SHA-256 checksum")
        stored = self._objects.get(key)
        if stored is None or stored.etag != if_match:
            return False  # S3's 412 (or 404): it changed meanwhile
        self._objects[key] = self._new(data, sha256.hex(), content_type)
        return True

    async def get(self, key: str) -> bytes:
        await asyncio.sleep(0)
        stored = self._object(key)
        if hashlib.sha256(stored.data).hexdigest() != stored.sha256:
            raise IntegrityError(f"{key} does not match the SHA-256 stored with it", key=key)
        return stored.data

    async def get_range(
        self, key: str, start: int, end: int, *, if_match: str | None = None
    ) -> bytes:
        await asyncio.sleep(0)
        stored = self._object(key)
        if if_match is not None and stored.etag != if_match:
            raise _replaced(key, start, end)
        return stored.data[start:end] if end > start else b""

    async def size(self, key: str) -> int:
        await asyncio.sleep(0)
        return len(self._object(key).data)

    def _pages(self, prefix: str) -> Iterator[list[str]]:
        """The keys under `prefix`, a page at a time, each page resuming after the last."""
        after = bisect.bisect_left(self._keys, prefix)
        while True:
            page = [key for key in self._keys[after : after + PAGE_KEYS] if key.startswith(prefix)]
            if not page:
                return
            yield page
            after += len(page)
            if len(page) < PAGE_KEYS:
                return

    async def list_keys(self, prefix: str) -> list[str]:
        await asyncio.sleep(0)
        return [key for page in self._pages(prefix) for key in page]

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        await asyncio.sleep(0)
        first = bisect.bisect_right(self._keys, start_after) if start_after else 0
        first = max(first, bisect.bisect_left(self._keys, prefix))
        page = self._keys[first : first + min(limit, PAGE_KEYS)]
        return [key for key in page if key.startswith(prefix)]

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        if self._objects.pop(key, None) is not None:
            self._keys.pop(bisect.bisect_left(self._keys, key))

    async def list_prefixes(self, prefix: str) -> list[str]:
        await asyncio.sleep(0)
        found = {
            prefix + key[len(prefix) :].split("/", 1)[0] + "/"
            for page in self._pages(prefix)
            for key in page
            if "/" in key[len(prefix) :]
        }
        return sorted(found)

    async def prefix_pages(self, prefix: str) -> AsyncIterator[list[str]]:
        found = await self.list_prefixes(prefix)
        for start in range(0, len(found), PAGE_KEYS):
            yield found[start : start + PAGE_KEYS]

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, limit: int
    ) -> Upload:
        upload_id = f"upload-{next(self._writes)}"
        self._uploads[upload_id] = OpenUpload(key=key, upload_id=upload_id, initiated=time.time())
        digest = hashlib.sha256()
        received = bytearray()
        try:
            async for chunk in chunks:
                if len(received) + len(chunk) > limit:
                    raise PayloadTooLarge(
                        f"the import is larger than the limit of {limit} bytes", limit_bytes=limit
                    )
                digest.update(chunk)
                received += chunk
            if upload_id not in self._uploads:
                raise ObjectNotFound(f"memory: the upload of {key} was aborted")
        finally:
            self._uploads.pop(upload_id, None)
        # A completed multipart upload replaces the key, as S3's does.
        if key not in self._objects:
            bisect.insort(self._keys, key)
        self._objects[key] = self._new(bytes(received), digest.hexdigest(), content_type)
        return Upload(size=len(received), sha256=digest.digest())

    async def open_uploads(self, prefix: str) -> list[OpenUpload]:
        await asyncio.sleep(0)
        found = [upload for upload in self._uploads.values() if upload.key.startswith(prefix)]
        return sorted(found, key=lambda upload: (upload.key, upload.upload_id))

    async def abort_upload(self, key: str, upload_id: str) -> None:
        await asyncio.sleep(0)
        upload = self._uploads.get(upload_id)
        if upload is not None and upload.key == key:
            del self._uploads[upload_id]

    async def check(self) -> None:
        await asyncio.sleep(0)

    def damage(self, key: str, data: bytes) -> None:
        """Replace the bytes of `key`, keeping the digest it was stored with (a test's
        stand-in for a disk fault)."""
        stored = self._object(key)
        self._objects[key] = msgspec.structs.replace(stored, data=data)


def _replaced(key: str, start: int, end: int) -> IntegrityError:
    """S3's 412 to a range read whose If-Match ETag is no longer the object's."""
    return IntegrityError(
        f"{key} was replaced: a range read of bytes {start}-{end - 1} pinned to its ETag "
        "got HTTP 412",
        key=key,
    )
