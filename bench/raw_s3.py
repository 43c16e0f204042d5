"""The raw ceiling: the same PUT pair and GET as the boto3 ceiling, by a minimal client.

This is the storage limit on this machine, the figure Vellum's own cost is held to: AWS
Signature Version 4 computed by hand (`hmac`, `hashlib`), sent over `http.client`, one
keep-alive connection per thread, no retries, no parsing beyond the status line. Each PUT
carries what Vellum's do: `If-None-Match: *`, the body's SHA-256 in the signed
`x-amz-checksum-sha256` header (the server checks it), an unsigned payload
(`x-amz-content-sha256: UNSIGNED-PAYLOAD`, so each body is hashed once). Only the bench
uses it: Vellum's S3 client stays in the boto3 family (SPEC §2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import threading
import urllib.parse
from datetime import UTC, datetime

from bench.measure import Timings
from bench.s3_ceiling import put_pairs, run_threads
from service.storage.s3 import S3Settings

_UNSIGNED = "UNSIGNED-PAYLOAD"
_ALGORITHM = "AWS4-HMAC-SHA256"


class S3Failure(Exception):
    """The server answered with a status other than the one expected."""


_FAILURES = (S3Failure, OSError)


class Signer:
    """SigV4 headers for path-style S3 requests to one endpoint and region."""

    def __init__(self, host: str, region: str, access_key: str, secret_key: str) -> None:
        self.host = host
        self.region = region
        self.access_key = access_key
        self.secret_key = secret_key
        self._keys: dict[str, bytes] = {}  # signing key per day

    def _signing_key(self, day: str) -> bytes:
        if day not in self._keys:
            key = f"AWS4{self.secret_key}".encode()
            for part in (day, self.region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys[day] = key
        return self._keys[day]

    def headers(
        self, method: str, path: str, extra: dict[str, str], now: datetime | None = None
    ) -> dict[str, str]:
        """`extra` (lowercase names) plus host, date, payload and authorization headers."""
        now = now or datetime.now(UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        signed = {
            **extra,
            "host": self.host,
            "x-amz-content-sha256": _UNSIGNED,
            "x-amz-date": stamp,
        }
        names = sorted(signed)
        canonical = "\n".join(
            [
                method,
                path,
                "",  # no query
                "".join(f"{name}:{signed[name].strip()}\n" for name in names),
                ";".join(names),
                _UNSIGNED,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            [_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (
            f"{_ALGORITHM} Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return signed


class RawCeiling:
    """The minimal client against one bucket and key prefix, at a fixed concurrency."""

    def __init__(self, settings: S3Settings, prefix: str, concurrency: int) -> None:
        endpoint = urllib.parse.urlsplit(settings.endpoint)
        access_key, secret_key = settings.access_key_id, settings.secret_access_key
        if endpoint.scheme != "http" or endpoint.hostname is None or endpoint.port is None:
            raise ValueError(f"the raw ceiling speaks plain http to host:port, not {endpoint}")
        if access_key is None or secret_key is None:
            raise ValueError("the raw ceiling needs the S3 server's keys")
        self.address = (endpoint.hostname, endpoint.port)
        self.signer = Signer(endpoint.netloc, settings.region, access_key, secret_key)
        self.bucket = settings.bucket
        self.prefix = prefix.strip("/") + "/"
        self.concurrency = concurrency
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> RawCeiling:
        return self

    def __exit__(self, *_: object) -> None:
        for connection in self._connections:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(*self.address, timeout=10)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _request(
        self, method: str, key: str, body: bytes | None, headers: dict[str, str], expect: int
    ) -> bytes:
        path = f"/{self.bucket}/{urllib.parse.quote(key, safe='/-_.~')}"
        signed = self.signer.headers(method, path, headers)
        connection = self._connection()
        connection.request(method, path, body=body, headers=signed)
        response = connection.getresponse()
        data = response.read()  # always, so the connection can be reused
        if response.status != expect:
            raise S3Failure(f"{method} {key}: HTTP {response.status}")
        return data

    def _put(self, key: str, body: bytes, digest: bytes, content_type: str) -> None:
        headers = {
            "content-type": content_type,
            "if-none-match": "*",
            "x-amz-checksum-sha256": base64.b64encode(digest).decode("ascii"),
        }
        self._request("PUT", key, body, headers, 200)

    def put_pairs(self, documents: list[bytes]) -> tuple[Timings, list[str]]:
        """PUT each document and its JSON record, as the boto3 ceiling does."""
        return put_pairs(documents, self.prefix, self.concurrency, self._put, _FAILURES)

    def get(self, keys: list[str]) -> Timings:
        def get_one(index: int) -> int:
            return len(self._request("GET", keys[index], None, {}, 200))

        return run_threads(len(keys), self.concurrency, get_one, _FAILURES)
