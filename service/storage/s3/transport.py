"""S3 requests signed by botocore and sent by aiohttp: no thread between Vellum and S3.

Each request is a `botocore.awsrequest.AWSRequest` signed by `botocore.auth.S3SigV4Auth`
with credentials from botocore's chain (or the settings' keys) and the settings' region,
then sent over one aiohttp `ClientSession` whose connector holds at most
`max_connections` connections. Bodies are not hashed a second time for the signature
(`x-amz-content-sha256: UNSIGNED-PAYLOAD`): the caller's `x-amz-checksum-sha256` header,
which is signed and which the server verifies, binds them. No `Expect: 100-continue`.

Retries follow botocore's standard mode: at most 3 attempts; connection errors, timeouts,
HTTP 500/502/503/504 and 429, throttling codes (SlowDown, ...) and transient ones
(RequestTimeout) are retried after a full-jitter exponential backoff, while a retry
quota lasts; any other answer, a 412 or 404 among them, is final. (aiohttp itself sends an
idempotent request once more when its connection is cut, mostly a kept-alive one the
server closed, before that counts as an attempt: urllib3, under botocore, drops such
connections before use for the same reason.) Answers outside the
statuses a call accepts become Vellum's exceptions here (`translate`).

At most `PENDING_PER_CONNECTION` requests per connection may be under way or waiting for
a connection; beyond that a request fails at once with Overloaded (503), not queued: a
backstop behind the server's own admission (`VELLUM_MAX_IN_FLIGHT` requests, bytes in
flight), for when S3 slows down.
"""

from __future__ import annotations

import asyncio
import base64
import random
import urllib.parse
from collections.abc import Collection, Mapping

import aiohttp
import botocore.config
import botocore.session
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.retries.quota import RetryQuota
from multidict import CIMultiDictProxy
from yarl import URL

from service.errors import (
    ObjectNotFound,
    Overloaded,
    StorageError,
    StorageUnavailable,
)
from service.storage.s3 import xml
from service.storage.s3.settings import S3Settings

# S3 requests that may be under way or wait, per connection. One ingest makes about a dozen
# calls at once (its original, index entries, record and head: docs/format.md), so 64 lets
# 16 connections carry the calls of 64 concurrent ingests and more; a queue that long
# still drains in well under a second at the pool's rate.
PENDING_PER_CONNECTION = 64
MAX_ATTEMPTS = 3  # botocore's standard mode
MAX_BACKOFF_SECONDS = 20.0
_RETRY_COST, _THROTTLING_RETRY_COST, _NO_RETRY_INCREMENT = 14, 5, 1  # botocore's quota
_RETRIED_STATUSES = frozenset({500, 502, 503, 504, 429})
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError"}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
SLOW_DOWN_RETRY_SECONDS = 5  # S3 asks clients to back off: more than the usual second
# botocore reads this to leave the payload out of the signature (S3SigV4Auth).
_SIGNING_CONFIG = botocore.config.Config(s3={"payload_signing_enabled": False})
# Answers of these may be an <Error> under HTTP 200 (botocore checks the same).
_ERRORS_UNDER_200 = frozenset({"CompleteMultipartUpload"})


DIGEST = "x-amz-meta-sha256"  # the SHA-256 (hex) Vellum keeps with each object it writes


def write_headers(sha256: bytes, content_type: str) -> dict[str, str]:
    """A PUT's headers: the body is bound by its checksum, which the server verifies,
    and its digest is kept with it for every later GET to check."""
    return {
        "Content-Type": content_type,
        "x-amz-checksum-sha256": base64.b64encode(sha256).decode("ascii"),
        DIGEST: sha256.hex(),
    }


class S3Error(Exception):
    """An S3 answer with a status the call did not accept."""

    def __init__(self, operation: str, status: int, code: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"S3 {operation}: {code} (HTTP {status})")
        self.operation = operation
        self.status = status
        self.code = code
        self.headers = headers


class Answer:
    """An S3 answer whose status the call accepts, its body read whole."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Transport:
    """Signed requests to one endpoint and bucket over a pool of connections."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        endpoint = urllib.parse.urlsplit(settings.endpoint)
        self._host = endpoint.netloc  # as aiohttp sends it: the port only if not the default
        self._base = settings.endpoint.rstrip("/") + "/" + _quote(settings.bucket)
        if settings.access_key_id is not None and settings.secret_access_key is not None:
            self._credentials: Credentials | None = Credentials(
                settings.access_key_id, settings.secret_access_key
            )
        else:  # the standard chain: environment, profile, instance role, ...
            self._credentials = botocore.session.Session().get_credentials()
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=min(settings.timeout_seconds, 5.0),
            sock_read=settings.timeout_seconds,
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_pending = PENDING_PER_CONNECTION * settings.max_connections
        self._pending = 0
        self._quota = RetryQuota()

    async def close(self) -> None:
        """Close the pool's connections (a session of an event loop gone is dropped)."""
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()

    def _session_here(self) -> aiohttp.ClientSession:
        """The session of the running event loop: a store used under one `asyncio.run`
        after another (tests, CLI helpers) gets a new one, the old loop being gone."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),  # S3 sets none: no jar to search
                timeout=self._timeout,
                # Bodies are taken as they are stored, never compressed on the way.
                headers={"Accept-Encoding": "identity"},
                auto_decompress=False,
                skip_auto_headers=("Content-Type", "User-Agent"),
            )
            self._loop = loop
        return self._session

    async def request(
        self,
        operation: str,
        method: str,
        key: str | None = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        accept: Collection[int] = (200,),
    ) -> Answer:
        """One S3 call on the bucket (`key` None) or one of its keys, retried as botocore's
        standard mode does; an answer outside `accept` is raised, translated."""
        if self._pending >= self._max_pending:
            raise Overloaded(
                f"{self._pending} S3 calls are waiting already; retry shortly",
                limit_pending=self._max_pending,
            )
        self._pending += 1
        try:
            url = self._base if key is None else f"{self._base}/{_quote(key)}"
            if query:
                url += "?" + "&".join(f"{_quote(k, '')}={_quote(v, '')}" for k, v in query.items())
            return await self._with_retries(operation, method, url, headers or {}, body, accept)
        finally:
            self._pending -= 1

    async def _with_retries(
        self,
        operation: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        accept: Collection[int],
    ) -> Answer:
        acquired = 0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = await self._send(method, url, headers, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                cost = _RETRY_COST
                if attempt == MAX_ATTEMPTS or not self._quota.acquire(cost):
                    raise StorageUnavailable(f"S3 endpoint unreachable: {exc!r}") from exc
            else:
                status, code = _status_and_code(operation, answer)
                if status in accept:
                    self._quota.release(acquired or _NO_RETRY_INCREMENT)
                    return answer
                error = S3Error(operation, status, code, answer.headers)
                throttled = code in _THROTTLING_CODES or status == 429
                retried = throttled or status in _RETRIED_STATUSES or code in _TRANSIENT_CODES
                cost = _THROTTLING_RETRY_COST if throttled else _RETRY_COST
                if not retried or attempt == MAX_ATTEMPTS or not self._quota.acquire(cost):
                    raise translate(error) from error
            acquired = cost
            # Full jitter, as botocore: up to 1 s after the first failure, 2 s after the second.
            await asyncio.sleep(random.random() * min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1)))  # noqa: S311
        raise AssertionError("unreachable")

    async def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        # Host given, so the signer need not parse it out of the URL (twice) itself.
        request = AWSRequest(
            method=method, url=url, headers={**headers, "Host": self._host}, data=body
        )
        request.context["client_config"] = _SIGNING_CONFIG
        S3SigV4Auth(await self._frozen_credentials(), "s3", self.settings.region).add_auth(request)
        async with self._session_here().request(
            method,
            URL(url, encoded=True),  # as signed: quoted once, by `_quote`
            headers=dict(request.headers.items()),
            data=body if method in ("PUT", "POST") else None,
        ) as response:
            return Answer(response.status, response.headers, await response.read())

    async def _frozen_credentials(self) -> ReadOnlyCredentials:
        credentials = self._credentials
        if credentials is None:
            raise StorageError("no S3 credentials found in the AWS credential chain")
        if isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed():
            # A refresh may ask the network (an instance role, SSO): not on the loop.
            return await asyncio.to_thread(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()


def _quote(value: str, safe: str = "/") -> str:
    """URI-encoding as SigV4 wants it: everything but unreserved characters (and `/` in a
    path); the signer takes the URL as it is, so it signs exactly what is sent."""
    return urllib.parse.quote(value, safe=safe + "-_.~")


def _status_and_code(operation: str, answer: Answer) -> tuple[int, str]:
    """An answer's status and error code: the code from its <Error> body, or the status
    for a body-less error (a HEAD's); "" for a success. An <Error> sent under HTTP 200
    counts as a 500, as botocore counts it."""
    if answer.status < 300:
        code = xml.error_code(answer.body) if operation in _ERRORS_UNDER_200 else ""
        return (500, code) if code else (answer.status, "")
    return answer.status, xml.error_code(answer.body) or str(answer.status)


def translate(error: S3Error) -> StorageError:
    """An S3 error answer as Vellum's exception."""
    code, status, operation = error.code, error.status, error.operation
    if code == "NoSuchBucket":
        return StorageUnavailable(f"S3 {operation}: the bucket does not exist")
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFound(f"S3 {operation}: {code or 'not found'}")
    if status >= 500 or code in _UNAVAILABLE_CODES:
        return StorageUnavailable(
            f"S3 {operation} failed: {code} (HTTP {status})",
            retry_after_seconds=_retry_after(error),
        )
    return StorageError(f"S3 {operation} failed: {code} (HTTP {status})")


def _retry_after(error: S3Error) -> int:
    """Seconds a client should wait: the endpoint's own Retry-After if it sent one, longer
    for SlowDown (throttling), else one second."""
    sent = str(error.headers.get("retry-after", ""))
    if sent.isdigit():
        return max(1, min(int(sent), 300))
    return SLOW_DOWN_RETRY_SECONDS if error.code == "SlowDown" else 1
