"""The boto3 ceiling: what plain boto3 achieves against the same S3 server.

Per document, ingest is the two conditional PUTs Vellum's write protocol makes (the
original bytes, then a ~1 KB JSON record), each with `If-None-Match: *` and the
SHA-256 the server verifies; a read is one GET of such a JSON object. The client is
made by `service.storage.s3.s3_client`, exactly as Vellum's is, with as many threads and
pooled connections as the phase's concurrency. No other Vellum code runs here.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import botocore.config
import botocore.exceptions
import msgspec

from bench.measure import Timings
from service.storage.s3 import S3Settings, s3_client

_BOTO3_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
TEXT_UTF8 = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"
EXCERPT_BYTES = 880  # makes the JSON object about 1 KB
_json = msgspec.json.Encoder()


def record_json(document: bytes, sha256_hex: str) -> bytes:
    """A ~1 KB JSON object naming the original, standing in for Vellum's record."""
    return _json.encode(
        {
            "schema": "bench.ceiling/1",
            "original": {"sha256": sha256_hex, "size": len(document)},
            "excerpt": document[:EXCERPT_BYTES].decode("utf-8", "ignore"),
        }
    )


class Ceiling:
    """boto3 against one bucket and key prefix, at a fixed concurrency."""

    def __init__(self, settings: S3Settings, prefix: str, concurrency: int) -> None:
        self.bucket = settings.bucket
        self.prefix = prefix.strip("/") + "/"
        self.concurrency = concurrency
        self.client = s3_client(settings, concurrency)

    def __enter__(self) -> Ceiling:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def _put(self, key: str, body: bytes, digest: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
            IfNoneMatch="*",
        )

    def put_pairs(self, documents: list[bytes]) -> tuple[Timings, list[str]]:
        """PUT each document and its JSON record; returns the records' keys."""
        return put_pairs(documents, self.prefix, self.concurrency, self._put)

    def get(self, keys: list[str]) -> Timings:
        def get_one(index: int) -> int:
            response = self.client.get_object(Bucket=self.bucket, Key=keys[index])
            with response["Body"] as body:
                return len(body.read())

        return run_threads(len(keys), self.concurrency, get_one)


Put = Callable[[str, bytes, bytes, str], None]  # key, body, its SHA-256, content type


def put_pairs(
    documents: list[bytes],
    prefix: str,
    concurrency: int,
    put: Put,
    errors: tuple[type[Exception], ...] = _BOTO3_ERRORS,
) -> tuple[Timings, list[str]]:
    """The ingest of a ceiling: for each document, `put` the original bytes, then a JSON
    record naming them, on `concurrency` threads; returns the records' keys."""
    keys = [""] * len(documents)

    def put_pair(index: int) -> int:
        document = documents[index]
        digest = hashlib.sha256(document).digest()
        put(f"{prefix}originals/sha256/{digest.hex()}", document, digest, TEXT_UTF8)
        record = record_json(document, digest.hex())
        key = f"{prefix}records/{digest.hex()}.json"
        put(key, record, hashlib.sha256(record).digest(), APPLICATION_JSON)
        keys[index] = key
        return 0  # nothing read

    timings = run_threads(len(documents), concurrency, put_pair, errors)
    return timings, [key for key in keys if key]


def run_threads(
    count: int,
    concurrency: int,
    operation: Callable[[int], int],
    errors: tuple[type[Exception], ...] = _BOTO3_ERRORS,
) -> Timings:
    """Run operation(0..count-1) on `concurrency` threads; it returns bytes read. An
    exception of `errors` is a failed operation."""

    def timed(index: int) -> tuple[float, int] | str:
        started = time.perf_counter()
        try:
            size = operation(index)
        except errors as exc:
            return repr(exc)
        return time.perf_counter() - started, size

    timings = Timings()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-boto3")
    try:
        began = time.perf_counter()
        outcomes = list(pool.map(timed, range(count)))
        timings.seconds = time.perf_counter() - began
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for outcome in outcomes:
        if isinstance(outcome, str):
            timings.failed(outcome)
        else:
            timings.latencies.append(outcome[0])
            timings.body_bytes += outcome[1]
    return timings
