"""A storage port that measures another: counts, latency and errors of every port call.

It wraps whichever adapter the application runs on (S3, or a test's fake), so boto3 stays
in `s3/` and the metrics stay out of it. Outcomes: `ok`, `not_found` (a missing key is
an answer, not a failure), `cancelled` and `error`, whose kind is the problem slug of the exception
(`storage-unavailable`, `storage-error`, ...).

It also remembers whether writes are failing: `writes_failing` turns true when a write
(`put_if_absent`, `upload`) fails with StorageUnavailable and false when one succeeds.
/readyz uses it: an S3 server that answers may still refuse writes (SeaweedFS does for a
moment after a restart).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import TypeVar

from service.errors import ObjectNotFound, StorageUnavailable, VellumError
from service.metrics import Metrics
from service.storage.port import BulkStore, ObjectInfo, OpenUpload, Upload

T = TypeVar("T")


class MeteredStore:
    """`BulkStore` (and so `ObjectStore`) over `inner`, recording each call in `metrics`."""

    def __init__(self, inner: BulkStore, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.writes_failing = False

    async def _measure(self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        outcome = "cancelled"  # unless the call returns or raises
        try:
            result = await call
            outcome = "ok"
            return result
        except ObjectNotFound:
            outcome = "not_found"
            raise
        except Exception as exc:
            outcome = "error"
            kind = exc.slug if isinstance(exc, VellumError) else "unexpected"
            self.metrics.storage_errors.labels(operation=operation, kind=kind).inc()
            raise
        finally:
            self.metrics.storage_call(operation, outcome, time.perf_counter() - started)

    async def _write(self, operation: str, call: Awaitable[T]) -> T:
        try:
            result = await self._measure(operation, call)
        except StorageUnavailable:
            self.writes_failing = True
            raise
        self.writes_failing = False
        return result

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        return await self._write(
            "put_if_absent",
            self.inner.put_if_absent(key, data, sha256=sha256, content_type=content_type),
        )

    async def get(self, key: str) -> bytes:
        return await self._measure("get", self.inner.get(key))

    async def list_keys(self, prefix: str) -> list[str]:
        return await self._measure("list_keys", self.inner.list_keys(prefix))

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        return await self._measure(
            "list_page", self.inner.list_page(prefix, start_after=start_after, limit=limit)
        )

    async def delete(self, key: str) -> None:
        await self._write("delete", self.inner.delete(key))

    async def head(self, key: str) -> ObjectInfo:
        return await self._measure("head", self.inner.head(key))

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        return await self._write(
            "replace",
            self.inner.replace(
                key, data, sha256=sha256, content_type=content_type, if_match=if_match
            ),
        )

    async def check(self) -> None:
        await self._measure("check", self.inner.check())

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, limit: int
    ) -> Upload:
        return await self._write(
            "upload", self.inner.upload(key, chunks, content_type=content_type, limit=limit)
        )

    async def get_range(
        self, key: str, start: int, end: int, *, if_match: str | None = None
    ) -> bytes:
        return await self._measure(
            "get_range", self.inner.get_range(key, start, end, if_match=if_match)
        )

    async def size(self, key: str) -> int:
        return await self._measure("size", self.inner.size(key))

    async def list_prefixes(self, prefix: str) -> list[str]:
        return await self._measure("list_prefixes", self.inner.list_prefixes(prefix))

    async def prefix_pages(self, prefix: str) -> AsyncIterator[list[str]]:
        pages = self.inner.prefix_pages(prefix)
        while (page := await self._measure("prefix_pages", anext(pages, None))) is not None:
            yield page

    async def open_uploads(self, prefix: str) -> list[OpenUpload]:
        return await self._measure("open_uploads", self.inner.open_uploads(prefix))

    async def abort_upload(self, key: str, upload_id: str) -> None:
        await self._measure("abort_upload", self.inner.abort_upload(key, upload_id))
