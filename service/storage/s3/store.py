"""The S3 adapter of the storage port: every `ObjectStore` call as S3 requests.

Writes are conditional creates (`If-None-Match: *`) carrying the SHA-256 the caller
computed (`x-amz-checksum-sha256`), which the server verifies before it stores anything.
Requests go through `transport` (signing, sending, retries, error translation), the XML
they read and write through `xml`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from service.errors import (
    IntegrityError,
    ObjectNotFound,
    PayloadTooLarge,
    StorageError,
)
from service.storage.port import ObjectInfo, OpenUpload, Upload, key_prefix
from service.storage.s3 import guarantees, xml
from service.storage.s3.settings import S3Settings
from service.storage.s3.transport import DIGEST, Answer, Transport, write_headers

# S3 answers 409 ConditionalRequestConflict while another conditional write of the same
# key is in flight; the loser retries until it sees 412 (exists) or wins.
_CONFLICT_RETRIES = 5
_CONFLICT_BACKOFF_SECONDS = 0.05
PART_BYTES = 8 * 1024 * 1024  # multipart part size (S3's minimum is 5 MiB)


class S3ObjectStore:
    """`ObjectStore` over one bucket and key prefix of an S3-compatible endpoint."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = key_prefix(settings.prefix)
        self._s3 = Transport(settings)

    async def close(self) -> None:
        await self._s3.close()

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        headers = write_headers(sha256, content_type) | {"If-None-Match": "*"}
        for attempt in range(_CONFLICT_RETRIES + 1):
            answer = await self._s3.request(
                "PutObject",
                "PUT",
                self.prefix + key,
                headers=headers,
                body=data,
                accept=(200, 409, 412) if attempt < _CONFLICT_RETRIES else (200, 412),
            )
            if answer.status != 409:
                return answer.status == 200
            await asyncio.sleep(_CONFLICT_BACKOFF_SECONDS * (attempt + 1))
        raise AssertionError("unreachable")

    async def get(self, key: str) -> bytes:
        answer = await self._s3.request("GetObject", "GET", self.prefix + key)
        kept = answer.headers.get(DIGEST)
        if kept is None:  # every object Vellum reads whole, Vellum wrote with one
            raise IntegrityError(f"{key} has no SHA-256 kept with it", key=key)
        if hashlib.sha256(answer.body).hexdigest() != kept:
            raise IntegrityError(f"{key} does not match the SHA-256 stored with it", key=key)
        return answer.body

    async def head(self, key: str) -> ObjectInfo:
        answer = await self._s3.request("HeadObject", "HEAD", self.prefix + key)
        return ObjectInfo(
            size=int(answer.headers["Content-Length"]),
            sha256=answer.headers.get(DIGEST),
            etag=answer.headers["ETag"],
        )

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        answer = await self._s3.request(
            "PutObject",
            "PUT",
            self.prefix + key,
            headers=write_headers(sha256, content_type) | {"If-Match": if_match},
            body=data,
            accept=(200, 404, 412),
        )
        return answer.status == 200

    async def list_keys(self, prefix: str) -> list[str]:
        strip = len(self.prefix)
        return [
            key[strip:]
            async for page in self._list_pages(self.prefix + prefix)
            for key in page.keys
        ]

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        query = {"prefix": self.prefix + prefix, "max-keys": str(min(limit, 1000))}
        if start_after:
            query["start-after"] = self.prefix + start_after
        page = await self._list(query)
        strip = len(self.prefix)
        return [key[strip:] for key in page.keys]

    async def delete(self, key: str) -> None:
        await self._s3.request("DeleteObject", "DELETE", self.prefix + key, accept=(200, 204))

    async def _list(self, query: dict[str, str]) -> xml.ListPage:
        answer = await self._s3.request(
            "ListObjectsV2", "GET", query={"list-type": "2", "encoding-type": "url", **query}
        )
        return xml.list_objects_page(answer.body)

    async def _list_pages(
        self, prefix: str, delimiter: str | None = None
    ) -> AsyncIterator[xml.ListPage]:
        """ListObjectsV2 pages, following continuation tokens."""
        query = {"prefix": prefix} | ({"delimiter": delimiter} if delimiter else {})
        while True:
            page = await self._list(query)
            yield page
            if page.next_token is None:
                return
            query["continuation-token"] = page.next_token

    async def get_range(
        self, key: str, start: int, end: int, *, if_match: str | None = None
    ) -> bytes:
        if end <= start:
            return b""
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if if_match is not None:
            headers["If-Match"] = if_match
        answer = await self._s3.request(
            "GetObject", "GET", self.prefix + key, headers=headers, accept=(200, 206, 412)
        )
        if answer.status == 412:  # replaced since its ETag was taken
            raise IntegrityError(
                f"{key} was replaced: a range read of bytes {start}-{end - 1} "
                "pinned to its ETag got HTTP 412",
                key=key,
            )
        return _checked_range(key, start, end, answer)

    async def size(self, key: str) -> int:
        return (await self.head(key)).size

    async def list_prefixes(self, prefix: str) -> list[str]:
        return [folder async for page in self.prefix_pages(prefix) for folder in page]

    async def prefix_pages(self, prefix: str) -> AsyncIterator[list[str]]:
        strip = len(self.prefix)
        async for page in self._list_pages(self.prefix + prefix, "/"):
            yield [folder[strip:] for folder in page.prefixes]

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, limit: int
    ) -> Upload:
        full_key = self.prefix + key
        creating = asyncio.ensure_future(
            self._s3.request(
                "CreateMultipartUpload",
                "POST",
                full_key,
                query={"uploads": ""},
                headers={"Content-Type": content_type},
            )
        )
        try:
            upload_id = xml.upload_id((await asyncio.shield(creating)).body)
        except asyncio.CancelledError:
            # Cancelled while S3 creates it: the upload exists once that call returns, so
            # it is aborted then (the stale-upload sweep, should this fail too).
            with contextlib.suppress(Exception):
                await self.abort_upload(key, xml.upload_id((await creating).body))
            raise
        digest = hashlib.sha256()
        parts: list[tuple[int, str]] = []
        size = 0
        pending = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"the import is larger than the limit of {limit} bytes",
                        limit_bytes=limit,
                    )
                digest.update(chunk)
                pending += chunk
                if len(pending) >= PART_BYTES:
                    parts.append(await self._upload_part(full_key, upload_id, parts, pending))
                    pending.clear()
            if pending or not parts:
                parts.append(await self._upload_part(full_key, upload_id, parts, pending))
            await self._s3.request(
                "CompleteMultipartUpload",
                "POST",
                full_key,
                query={"uploadId": upload_id},
                body=xml.complete_upload(parts),
            )
        except BaseException:
            # Whatever failed (the client, a limit, S3, a cancellation), the parts go; if
            # S3 cannot take the abort now, the stale-upload sweep aborts it later.
            with contextlib.suppress(StorageError):  # the first error is the one to report
                await asyncio.shield(self.abort_upload(key, upload_id))
            raise
        return Upload(size=size, sha256=digest.digest())

    async def _upload_part(
        self, full_key: str, upload_id: str, parts: list[tuple[int, str]], data: bytearray
    ) -> tuple[int, str]:
        """Send the next part; its number and ETag."""
        number = len(parts) + 1
        body = bytes(data)
        answer = await self._s3.request(
            "UploadPart",
            "PUT",
            full_key,
            query={"partNumber": str(number), "uploadId": upload_id},
            headers={
                "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(
                    "ascii"
                )
            },
            body=body,
        )
        return number, answer.headers["ETag"]

    async def open_uploads(self, prefix: str) -> list[OpenUpload]:
        strip = len(self.prefix)
        found: list[OpenUpload] = []
        query = {"uploads": "", "prefix": self.prefix + prefix}
        while True:
            answer = await self._s3.request("ListMultipartUploads", "GET", query=query)
            page = xml.uploads_page(answer.body)
            found += [
                OpenUpload(key=item.key[strip:], upload_id=item.upload_id, initiated=item.initiated)
                for item in page.uploads
            ]
            if page.next_markers is None:
                return found
            query |= page.next_markers

    async def abort_upload(self, key: str, upload_id: str) -> None:
        await self._s3.request(
            "AbortMultipartUpload",
            "DELETE",
            self.prefix + key,
            query={"uploadId": upload_id},
            accept=(200, 204, 404),  # 404 NoSuchUpload: aborted or completed already
        )

    async def check(self) -> None:
        await self._s3.request("HeadBucket", "HEAD")

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet, then prove the endpoint keeps the
        write protocol's guarantees (`prove_guarantees`)."""
        try:
            await self.check()
        except ObjectNotFound:
            await self._s3.request("CreateBucket", "PUT")
        await self.prove_guarantees()

    async def prove_guarantees(self) -> None:
        """SPEC §2's start-up probe (`guarantees.prove`)."""
        await guarantees.prove(self, self._s3)


def _checked_range(key: str, start: int, end: int, answer: Answer) -> bytes:
    """A range read's bytes, unless a server ignored the range (200, the whole object) or
    the object changed under the reader: those must not pass for the bytes asked for."""
    data, status = answer.body, answer.status
    total = int(answer.headers.get("Content-Range", "/-1").rpartition("/")[2] or -1)
    if status != 206 and not (status == 200 and start == 0 and len(data) == end):
        raise IntegrityError(
            f"{key}: a range read of bytes {start}-{end - 1} got HTTP {status}", key=key
        )
    if len(data) != min(end, total if total >= 0 else end) - start:
        raise IntegrityError(
            f"{key}: a range read of bytes {start}-{end - 1} got {len(data)} bytes", key=key
        )
    return data
