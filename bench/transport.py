"""Vellum's S3 transport alone: an `S3ObjectStore` in the bench process, no server.

The same PUT pair and GET as the raw and boto3 ceilings, made by the adapter Vellum
serves with (its `put_if_absent`, conditional and checksummed, and its `get`, which checks
the SHA-256 kept with the object), at the same concurrency: as many asyncio workers as
connections in the adapter's pool. Its client CPU per call is the bench process's, as for
the ceilings, so it sets the transport beside the raw client (issue #15: at most 1.5×).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

import msgspec

from bench.measure import Timings
from bench.s3_ceiling import APPLICATION_JSON, TEXT_UTF8, record_json
from service.errors import StorageError
from service.storage.s3 import S3ObjectStore, S3Settings


class Transport:
    """`S3ObjectStore` over one key prefix, with a pool of `concurrency` connections."""

    def __init__(self, settings: S3Settings, prefix: str, concurrency: int) -> None:
        self.settings = msgspec.structs.replace(
            settings, prefix=prefix, max_connections=concurrency
        )
        self.concurrency = concurrency

    def put_pairs(self, documents: list[bytes]) -> tuple[Timings, list[str]]:
        """Create each document and its JSON record; returns the records' keys."""
        keys = [""] * len(documents)

        async def put_pair(store: S3ObjectStore, index: int) -> int:
            document = documents[index]
            digest = hashlib.sha256(document).digest()
            original = f"originals/sha256/{digest.hex()}"
            if not await store.put_if_absent(
                original, document, sha256=digest, content_type=TEXT_UTF8
            ):
                raise StorageError(f"{original} existed already")
            record = record_json(document, digest.hex())
            key = f"records/{digest.hex()}.json"
            if not await store.put_if_absent(
                key, record, sha256=hashlib.sha256(record).digest(), content_type=APPLICATION_JSON
            ):
                raise StorageError(f"{key} existed already")
            keys[index] = key
            return 0  # nothing read

        timings = asyncio.run(self._run(len(documents), put_pair))
        return timings, [key for key in keys if key]

    def get(self, keys: list[str]) -> Timings:
        async def get_one(store: S3ObjectStore, index: int) -> int:
            return len(await store.get(keys[index]))

        return asyncio.run(self._run(len(keys), get_one))

    async def _run(
        self, count: int, operation: Callable[[S3ObjectStore, int], Awaitable[int]]
    ) -> Timings:
        """operation(store, 0..count-1) on `concurrency` workers; it returns bytes read."""
        timings = Timings()
        next_index = iter(range(count))
        store = S3ObjectStore(self.settings)

        async def worker() -> None:
            for index in next_index:
                started = time.perf_counter()
                try:
                    size = await operation(store, index)
                except StorageError as exc:
                    timings.failed(repr(exc))
                    continue
                timings.latencies.append(time.perf_counter() - started)
                timings.body_bytes += size

        try:
            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
            timings.seconds = time.perf_counter() - began
        finally:
            await store.close()
        return timings
