"""Where Vellum's S3 storage is and how it is reached; and a boto3 client over the same.

Vellum's own calls go through `transport` (botocore-signed, sent by aiohttp). `s3_client`
makes a blocking boto3 client with the same settings for the benchmark's plain-boto3
ceiling (bench.s3_ceiling) and for tools that want one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import botocore.config
import msgspec
from botocore.awsrequest import AWSRequest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


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
    """botocore's settings for a boto3 client doing what Vellum's transport does."""
    return botocore.config.Config(
        max_pool_connections=max_connections,
        connect_timeout=min(timeout_seconds, 5.0),
        read_timeout=timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        # The caller computes SHA-256 itself and passes it in: no second checksum.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Over plain HTTP botocore would hash every body again for the signature. The
        # body is bound by the signed `x-amz-checksum-sha256` header instead, which the
        # server checks: each byte is hashed once.
        s3={"addressing_style": "path", "payload_signing_enabled": False},
    )


def s3_client(settings: S3Settings, max_connections: int) -> S3Client:
    """A boto3 client configured as Vellum's transport is (the benchmark's ceiling)."""
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
