"""The bench's raw ceiling (bench.raw_s3) signs and sends what Vellum's S3 calls do.

Against the real SeaweedFS: its PUTs are accepted (so the hand-made SigV4 signature is
right), a second conditional create of a key is refused, reads return the bytes written,
and a wrong secret is refused; so the ceiling measures real, verified S3 work.
"""

from __future__ import annotations

import msgspec

from bench.raw_s3 import RawCeiling
from bench.s3_ceiling import record_json
from service.storage.s3 import S3Settings

DOCUMENTS = [f"Article {n}: “quoted” text.\n\nSecond paragraph.".encode() for n in range(3)]


def test_put_pairs_are_accepted_and_read_back(s3_settings: S3Settings) -> None:
    with RawCeiling(s3_settings, s3_settings.prefix, concurrency=2) as raw:
        timings, keys = raw.put_pairs(DOCUMENTS)
        assert (timings.errors, len(keys)) == (0, 3), timings.first_error
        read = raw.get(keys)
    assert read.errors == 0
    assert read.body_bytes == sum(len(record_json(d, "0" * 64)) for d in DOCUMENTS)


def test_a_second_conditional_create_is_refused(s3_settings: S3Settings) -> None:
    with RawCeiling(s3_settings, s3_settings.prefix, concurrency=1) as raw:
        raw.put_pairs(DOCUMENTS[:1])
        again, keys = raw.put_pairs(DOCUMENTS[:1])
    assert (again.errors, keys) == (1, [])
    assert "HTTP 412" in (again.first_error or "")


def test_a_wrong_secret_is_refused(s3_settings: S3Settings) -> None:
    forged = msgspec.structs.replace(s3_settings, secret_access_key="not-the-secret")
    with RawCeiling(forged, forged.prefix, concurrency=1) as raw:
        timings, _ = raw.put_pairs(DOCUMENTS[:1])
    assert timings.errors == 1
    assert "HTTP 403" in (timings.first_error or "")
