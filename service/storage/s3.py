"""The S3 adapter of the storage port: the only module that imports boto3.

boto3 is blocking, so every call runs in a bounded thread pool whose size equals
botocore's connection pool: a call never waits for a connection and the event loop
never blocks. At most `PENDING_PER_CONNECTION` calls per connection may wait for the
pool; beyond that a call fails at once with Overloaded (503) instead of queueing.

Writes are conditional creates (`If-None-Match: *`) carrying the SHA-256 the caller
computed (`x-amz-checksum-sha256`), which the server verifies before it stores anything.
botocore errors are translated here into Vellum's exception tree.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import msgspec
from botocore.awsrequest import AWSRequest

from service.errors import (
    IntegrityError,
    ObjectNotFound,
    Overloaded,
    PayloadTooLarge,
    StorageError,
    StorageUnavailable,
    UnsafeStorage,
)
from service.storage.port import ObjectInfo, OpenUpload, Upload, key_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef

T = TypeVar("T")

# S3 answers 409 ConditionalRequestConflict while another conditional write of the same
# key is in flight; the loser retries until it sees 412 (exists) or wins.
_CONFLICT_RETRIES = 5
_CONFLICT_BACKOFF_SECONDS = 0.05
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError"}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
PART_BYTES = 8 * 1024 * 1024  # multipart part size (S3's minimum is 5 MiB)
PENDING_PER_CONNECTION = 8  # S3 calls that may wait for the thread pool, per connection


class S3Settings(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: str
    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    max_connections: int = 16
    timeout_seconds: float = 10.0
    # None: the standard AWS credential chain (environment, profile, instance role).
    access_key_id: str | None = None
    secret_access_key: str | None = None


def _client_config(max_connections: int, timeout_seconds: float) -> botocore.config.Config:
    """botocore's settings for Vellum's client."""
    return botocore.config.Config(
        max_pool_connections=max_connections,
        connect_timeout=min(timeout_seconds, 5.0),
        read_timeout=timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        # Vellum computes SHA-256 itself and passes it in: no second checksum.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Over plain HTTP botocore would hash every body again for the signature. The
        # body is bound by the signed `x-amz-checksum-sha256` header instead, which the
        # server checks: each byte is hashed once, by Vellum.
        s3={"addressing_style": "path", "payload_signing_enabled": False},
    )


def s3_client(settings: S3Settings, max_connections: int) -> S3Client:
    """A boto3 client for Vellum (and for the benchmark's plain-boto3 ceiling)."""
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region,
    )
    client: S3Client = session.client(
        "s3",
        endpoint_url=settings.endpoint,
        config=_client_config(max_connections, settings.timeout_seconds),
    )
    client.meta.events.register("before-sign.s3.PutObject", _send_without_expect)
    return client


def _send_without_expect(request: AWSRequest, **_: object) -> None:
    """botocore asks for `Expect: 100-continue` on every PutObject: it sends the headers,
    waits for the server's interim answer, then the body, one more round trip per PUT.
    That pays for bodies large enough to be worth refusing unsent; a document or record
    is at most VELLUM_MAX_BODY_BYTES (5 MiB), so it goes at once. (Not signed: SigV4
    leaves `Expect` out.)"""
    del request.headers["Expect"]


PROTOCOL_PROBE_KEY = "_vellum/protocol-probe/conditional-create"
CHECKSUM_PROBE_KEY = "_vellum/protocol-probe/checksum"


class S3ObjectStore:
    """`ObjectStore` over one bucket and key prefix of an S3-compatible endpoint."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.prefix = key_prefix(settings.prefix)
        self._client = s3_client(settings, settings.max_connections)
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_connections, thread_name_prefix="vellum-s3"
        )
        # Calls queued for the pool beyond this many are refused (503), not queued.
        self._max_pending = PENDING_PER_CONNECTION * settings.max_connections
        self._pending = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    async def _run(self, call: Callable[[], T]) -> T:
        if self._pending >= self._max_pending:
            raise Overloaded(
                f"{self._pending} S3 calls are waiting already; retry shortly",
                limit_pending=self._max_pending,
            )
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            return await loop.run_in_executor(self._pool, call)
        except botocore.exceptions.ClientError as exc:
            raise _translate_client_error(exc) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise StorageError("no S3 credentials found in the AWS credential chain") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise StorageUnavailable(f"S3 endpoint unreachable: {exc}") from exc
        finally:
            self._pending -= 1

    async def put_if_absent(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str
    ) -> bool:
        checksum = base64.b64encode(sha256).decode("ascii")
        full_key = self.prefix + key

        def put() -> bool:
            for attempt in range(_CONFLICT_RETRIES + 1):
                try:
                    self._client.put_object(
                        Bucket=self.bucket,
                        Key=full_key,
                        Body=data,
                        ContentType=content_type,
                        ChecksumSHA256=checksum,
                        IfNoneMatch="*",
                        Metadata={"sha256": sha256.hex()},
                    )
                    return True
                except botocore.exceptions.ClientError as exc:
                    status = _status(exc)
                    if status == 412:
                        return False
                    if status != 409 or attempt == _CONFLICT_RETRIES:
                        raise
                    time.sleep(_CONFLICT_BACKOFF_SECONDS * (attempt + 1))
            raise AssertionError("unreachable")

        return await self._run(put)

    async def get(self, key: str) -> bytes:
        full_key = self.prefix + key

        def get() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=full_key)
            with response["Body"] as body:
                data = body.read()
            kept = response.get("Metadata", {}).get("sha256")
            if kept is None:  # every object Vellum reads whole, Vellum wrote with one
                raise IntegrityError(f"{key} has no SHA-256 kept with it", key=key)
            if hashlib.sha256(data).hexdigest() != kept:
                raise IntegrityError(f"{key} does not match the SHA-256 stored with it", key=key)
            return data

        return await self._run(get)

    async def head(self, key: str) -> ObjectInfo:
        full_key = self.prefix + key
        head = await self._run(lambda: self._client.head_object(Bucket=self.bucket, Key=full_key))
        return ObjectInfo(
            size=int(head["ContentLength"]),
            sha256=head.get("Metadata", {}).get("sha256"),
            etag=str(head["ETag"]),
        )

    async def replace(
        self, key: str, data: bytes, *, sha256: bytes, content_type: str, if_match: str
    ) -> bool:
        full_key = self.prefix + key

        def put() -> bool:
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=full_key,
                    Body=data,
                    ContentType=content_type,
                    ChecksumSHA256=base64.b64encode(sha256).decode("ascii"),
                    IfMatch=if_match,
                    Metadata={"sha256": sha256.hex()},
                )
            except botocore.exceptions.ClientError as exc:
                if _status(exc) in (404, 412):
                    return False
                raise
            return True

        return await self._run(put)

    async def list_keys(self, prefix: str) -> list[str]:
        full_prefix = self.prefix + prefix
        strip = len(self.prefix)

        def list_keys() -> list[str]:
            return [
                item["Key"][strip:]
                for page in self._list_pages(Prefix=full_prefix)
                for item in page.get("Contents", [])
            ]

        return await self._run(list_keys)

    async def list_page(
        self, prefix: str, *, start_after: str = "", limit: int = 1000
    ) -> list[str]:
        strip = len(self.prefix)
        query = {"Prefix": self.prefix + prefix, "MaxKeys": min(limit, 1000)}
        if start_after:
            query["StartAfter"] = self.prefix + start_after
        page = await self._run(
            lambda: self._client.list_objects_v2(Bucket=self.bucket, **query)  # type: ignore[arg-type]
        )
        return [item["Key"][strip:] for item in page.get("Contents", [])]

    async def delete(self, key: str) -> None:
        full_key = self.prefix + key
        await self._run(lambda: self._client.delete_object(Bucket=self.bucket, Key=full_key))

    def _list_pages(self, **query: str) -> Iterator[ListObjectsV2OutputTypeDef]:
        """ListObjectsV2 pages, following continuation tokens. (botocore's paginator does
        the same for about 0.2 ms more CPU per call: a read of the latest version lists.)"""
        token: dict[str, str] = {}
        while True:
            page = self._client.list_objects_v2(Bucket=self.bucket, **query, **token)  # type: ignore[arg-type]
            yield page
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    async def get_range(
        self, key: str, start: int, end: int, *, if_match: str | None = None
    ) -> bytes:
        full_key = self.prefix + key
        pinned = {} if if_match is None else {"IfMatch": if_match}

        def get_range() -> bytes:
            try:
                response = self._client.get_object(
                    Bucket=self.bucket,
                    Key=full_key,
                    Range=f"bytes={start}-{end - 1}",
                    **pinned,  # type: ignore[arg-type]
                )
            except botocore.exceptions.ClientError as exc:
                if _status(exc) == 412:  # replaced since its ETag was taken
                    raise IntegrityError(
                        f"{key} was replaced: a range read of bytes {start}-{end - 1} "
                        "pinned to its ETag got HTTP 412",
                        key=key,
                    ) from exc
                raise
            with response["Body"] as body:
                data = body.read()
            # A server that ignored the range (200, the whole object) or an object that
            # changed under the reader must not pass for the bytes asked for.
            status = response["ResponseMetadata"]["HTTPStatusCode"]
            total = int(response.get("ContentRange", "/-1").rpartition("/")[2] or -1)
            if status != 206 and not (status == 200 and start == 0 and len(data) == end):
                raise IntegrityError(
                    f"{key}: a range read of bytes {start}-{end - 1} got HTTP {status}",
                    key=key,
                )
            if len(data) != min(end, total if total >= 0 else end) - start:
                raise IntegrityError(
                    f"{key}: a range read of bytes {start}-{end - 1} got {len(data)} bytes",
                    key=key,
                )
            return data

        if end <= start:
            return b""
        return await self._run(get_range)

    async def size(self, key: str) -> int:
        full_key = self.prefix + key
        head = await self._run(lambda: self._client.head_object(Bucket=self.bucket, Key=full_key))
        return int(head["ContentLength"])

    async def list_prefixes(self, prefix: str) -> list[str]:
        full_prefix = self.prefix + prefix
        strip = len(self.prefix)

        def list_prefixes() -> list[str]:
            pages = self._list_pages(Prefix=full_prefix, Delimiter="/")
            return [
                item["Prefix"][strip:] for page in pages for item in page.get("CommonPrefixes", [])
            ]

        return await self._run(list_prefixes)

    async def prefix_pages(self, prefix: str) -> AsyncIterator[list[str]]:
        full_prefix = self.prefix + prefix
        strip = len(self.prefix)
        pages = self._list_pages(Prefix=full_prefix, Delimiter="/")
        while True:
            page = await self._run(lambda: next(pages, None))
            if page is None:
                return
            yield [item["Prefix"][strip:] for item in page.get("CommonPrefixes", [])]

    async def upload(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, limit: int
    ) -> Upload:
        full_key = self.prefix + key
        creating = asyncio.ensure_future(
            self._run(
                lambda: self._client.create_multipart_upload(
                    Bucket=self.bucket, Key=full_key, ContentType=content_type
                )
            )
        )
        try:
            upload_id = (await asyncio.shield(creating))["UploadId"]
        except asyncio.CancelledError:
            # Cancelled while S3 creates it: the upload exists once that call returns, so
            # it is aborted then (the stale-upload sweep, should this fail too).
            with contextlib.suppress(Exception):
                await self.abort_upload(key, (await creating)["UploadId"])
            raise
        digest = hashlib.sha256()
        parts: list[dict[str, object]] = []
        size = 0
        pending = bytearray()

        async def send(data: bytes) -> None:
            number = len(parts) + 1
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
            answer = await self._run(
                lambda: self._client.upload_part(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ChecksumSHA256=checksum,
                )
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

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
                    await send(bytes(pending))
                    pending.clear()
            if pending or not parts:
                await send(bytes(pending))
            await self._run(
                lambda: self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
            )
        except BaseException:
            # Whatever failed (the client, a limit, S3, a cancellation), the parts go; if
            # S3 cannot take the abort now, the stale-upload sweep aborts it later.
            with contextlib.suppress(StorageError):  # the first error is the one to report
                await asyncio.shield(self.abort_upload(key, upload_id))
            raise
        return Upload(size=size, sha256=digest.digest())

    async def open_uploads(self, prefix: str) -> list[OpenUpload]:
        full_prefix = self.prefix + prefix
        strip = len(self.prefix)

        def open_uploads() -> list[OpenUpload]:
            found: list[OpenUpload] = []
            markers: dict[str, str] = {}
            while True:
                page = self._client.list_multipart_uploads(
                    Bucket=self.bucket,
                    Prefix=full_prefix,
                    **markers,  # type: ignore[arg-type]
                )
                found += [
                    OpenUpload(
                        key=item["Key"][strip:],
                        upload_id=item["UploadId"],
                        initiated=item["Initiated"].timestamp(),
                    )
                    for item in page.get("Uploads", [])
                ]
                if not page.get("IsTruncated"):
                    return found
                markers = {
                    "KeyMarker": page["NextKeyMarker"],
                    "UploadIdMarker": page["NextUploadIdMarker"],
                }

        return await self._run(open_uploads)

    async def abort_upload(self, key: str, upload_id: str) -> None:
        full_key = self.prefix + key

        def abort() -> None:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=full_key, UploadId=upload_id
                )
            except botocore.exceptions.ClientError as exc:
                if _status(exc) != 404:  # NoSuchUpload: aborted or completed already
                    raise

        await self._run(abort)

    async def check(self) -> None:
        await self._run(lambda: self._client.head_bucket(Bucket=self.bucket))

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet, then prove the endpoint keeps the
        write protocol's guarantees (`prove_guarantees`)."""
        try:
            await self.check()
        except ObjectNotFound:
            await self._run(lambda: self._client.create_bucket(Bucket=self.bucket))
        await self.prove_guarantees()

    async def prove_guarantees(self) -> None:
        """SPEC §2: a second conditional create of one key is refused (412), and a body
        whose SHA-256 does not match its checksum header is refused (400). An endpoint
        that fails either would silently overwrite or keep corrupt bytes: UnsafeStorage,
        naming the guarantee. Two fixed probe keys, written again at every start."""
        body = b"vellum write-protocol probe"
        digest = hashlib.sha256(body).digest()
        await self.put_if_absent(PROTOCOL_PROBE_KEY, body, sha256=digest, content_type="text/plain")
        if await self.put_if_absent(
            PROTOCOL_PROBE_KEY, body, sha256=digest, content_type="text/plain"
        ):
            raise UnsafeStorage(
                f"the S3 endpoint {self.settings.endpoint} accepted a second conditional "
                "create of one key (If-None-Match: * must get 412): it would silently "
                "overwrite archived objects, so Vellum refuses it"
            )
        wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode("ascii")
        full_key = self.prefix + CHECKSUM_PROBE_KEY

        def put_wrong_checksum() -> int:
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=full_key,
                    Body=body,
                    ContentType="text/plain",
                    ChecksumSHA256=wrong,
                    Metadata={"sha256": digest.hex()},
                )
            except botocore.exceptions.ClientError as exc:
                return _status(exc)
            return 200

        status = await self._run(put_wrong_checksum)
        if status != 400:
            raise UnsafeStorage(
                f"the S3 endpoint {self.settings.endpoint} answered HTTP {status} to a body "
                "whose SHA-256 does not match its x-amz-checksum-sha256 (it must refuse it "
                "with 400): it would keep corrupt bytes, so Vellum refuses it"
            )


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _translate_client_error(exc: botocore.exceptions.ClientError) -> StorageError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = _status(exc)
    operation = exc.operation_name
    if code == "NoSuchBucket":
        return StorageUnavailable(f"S3 {operation}: the bucket does not exist")
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFound(f"S3 {operation}: {code or 'not found'}")
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return StorageUnavailable(
            f"S3 {operation} failed: {code} (HTTP {status})",
            retry_after_seconds=_retry_after(exc, code),
        )
    return StorageError(f"S3 {operation} failed: {code} (HTTP {status})")


SLOW_DOWN_RETRY_SECONDS = 5  # S3 asks clients to back off: more than the usual second


def _retry_after(exc: botocore.exceptions.ClientError, code: str) -> int:
    """Seconds a client should wait: the endpoint's own Retry-After if it sent one, longer
    for SlowDown (throttling), else one second."""
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    sent = str(headers.get("retry-after", ""))
    if sent.isdigit():
        return max(1, min(int(sent), 300))
    return SLOW_DOWN_RETRY_SECONDS if code == "SlowDown" else 1
