"""Integrity fails closed (issue #13, item 9), against the real S3 server."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from service.errors import IntegrityError
from service.jobs import model
from service.jobs.imports import Jobs
from service.jobs.lines import read_lines
from service.storage.s3 import S3ObjectStore, S3Settings
from service.web.typedefs import IMPORT_WAKE
from tests.test_import_isolation import put_input
from tests.test_imports import wait_done
from tests.test_maintenance import flip_a_bit, raw_client

CHANGED = "4" * 32
OTHER = "5" * 32

TEXT = {"Content-Type": "text/plain; charset=utf-8"}
BODY = b"The exact bytes a newsroom sent."


async def post(client, source_url: str | None = None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    document: dict[str, object] = {"text": BODY.decode()}
    if source_url is not None:
        document["source"] = {"url": source_url}
    response = await client.post("/v1/documents", json=document)
    assert response.status == 201
    answer: dict[str, object] = await response.json()
    return answer


def original_key(body: bytes = BODY) -> str:
    return f"originals/sha256/{hashlib.sha256(body).hexdigest()}"


async def test_a_rotten_original_is_repaired_not_reused(
    client, store: S3ObjectStore, s3_settings: S3Settings
) -> None:  # type: ignore[no-untyped-def]
    """A second document with the same bytes used to reuse a rotten original: a 201 for
    a document whose original then fails every read."""
    first = await post(client)
    flip_a_bit(s3_settings, original_key())  # rot that keeps the stored digest
    assert (await client.get(f"/v1/documents/{first['id']}/original")).status == 500
    second = await post(client, "https://example.com/the-same-words")
    assert second["id"] != first["id"]
    for document in (first, second):
        original = await client.get(f"/v1/documents/{document['id']}/original")
        assert original.status == 200
        assert await original.read() == BODY


async def test_an_original_without_its_digest_is_repaired_not_reused(
    client, store: S3ObjectStore, s3_settings: S3Settings
) -> None:  # type: ignore[no-untyped-def]
    first = await post(client)
    raw = raw_client(s3_settings)
    raw.put_object(  # the right bytes, written by someone else: no kept SHA-256
        Bucket=s3_settings.bucket, Key=f"{s3_settings.prefix}/{original_key()}", Body=BODY
    )
    second = await post(client, "https://example.com/again")
    head = raw.head_object(Bucket=s3_settings.bucket, Key=f"{s3_settings.prefix}/{original_key()}")
    assert head["Metadata"]["sha256"] == hashlib.sha256(BODY).hexdigest()
    for document in (first, second):
        assert (await client.get(f"/v1/documents/{document['id']}/original")).status == 200


async def test_a_record_without_vellums_digest_is_an_integrity_error(
    client, store: S3ObjectStore, s3_settings: S3Settings
) -> None:  # type: ignore[no-untyped-def]
    """An object under a key Vellum writes but without the digest Vellum keeps was served
    as if it were Vellum's."""
    document = await post(client)
    raw = raw_client(s3_settings)
    # The version, read pinned; then its head too, which the latest is read from (and,
    # the head failing, the version again).
    for name, query in (("000000001.json", "?version=1"), ("latest.json", "")):
        key = f"{s3_settings.prefix}/records/{document['id']}/{name}"
        forged = (
            raw.get_object(Bucket=s3_settings.bucket, Key=key)["Body"]
            .read()
            .replace(b"newsroom", b"forgery!")
        )
        raw.put_object(Bucket=s3_settings.bucket, Key=key, Body=forged)
        response = await client.get(f"/v1/documents/{document['id']}{query}")
        assert response.status == 500
        assert (await response.json(content_type=None))["type"] == "/problems/integrity-error"


async def test_an_import_whose_input_changed_fails_with_the_reason(
    client, store: S3ObjectStore
) -> None:  # type: ignore[no-untyped-def]
    """The input's size was looked at, never compared with the manifest's."""
    data = b'{"text": "One line that was there."}\n'
    manifest = await put_input(store, CHANGED, data)
    assert manifest.input_bytes == len(data)
    # Another job made over the same input when it was 17 bytes longer.
    other = msgspec.structs.replace(manifest, job=OTHER, input_bytes=len(data) + 17)
    encoded = msgspec.json.encode(other)
    await store.put_if_absent(
        model.manifest_key(OTHER),
        encoded,
        sha256=hashlib.sha256(encoded).digest(),
        content_type="application/json",
    )
    await Jobs(store).recover(OTHER)
    client.app[IMPORT_WAKE].set()
    status = await wait_done(client, f"/v1/imports/{OTHER}", seconds=60)
    assert status["state"] == "failed"
    assert "it changed" in status["error"]
    assert status["created"] == 0


async def test_a_window_shorter_than_asked_is_an_integrity_error(store: S3ObjectStore) -> None:
    class Shrunk:
        """The input as seen by a reader after someone cut it short."""

        async def get_range(
            self, key: str, start: int, end: int, *, if_match: str | None = None
        ) -> bytes:
            return b'{"text": "cut"}\n'

    lines = read_lines(Shrunk(), "in", start=0, first_line=1, limit=1000, size=100)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError, match="changed while it was read"):
        async for _ in lines:
            pass
