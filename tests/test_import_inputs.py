"""An import reads the input its job was made for, or fails (issue #13, item 9), on the real
S3 server: `vellum import FILE` keeps the digest of the bytes it uploaded, an `s3://`
input is pinned to its ETag, and every input's SHA-256 is checked at its job's end."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from service.bootstrap import Services, open_services
from service.config import Config
from service.errors import ConfigError
from service.jobs import local, model
from service.jobs.inputs import input_changed
from service.storage.s3 import S3ObjectStore, S3Settings


def lines(*texts: str) -> bytes:
    return b"".join(json.dumps({"text": text}).encode() + b"\n" for text in texts)


@pytest.fixture
async def services(s3_store: S3ObjectStore, s3_settings: S3Settings) -> AsyncIterator[Services]:
    config = Config(
        s3_bucket=s3_settings.bucket, s3_prefix=s3_settings.prefix, analysis_processes=0
    )
    async with open_services(config, store=s3_store) as opened:
        yield opened


def quiet(manifest: model.Manifest) -> local.Progress:
    return lambda checkpoint: None


async def one_chunk(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def test_a_file_written_to_while_imported_is_refused_and_nothing_kept(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file was hashed, then read again to upload: bytes changed in between were
    stored under the first bytes' digest and imported (the job succeeded over them).
    Now the upload is aborted and the import refused."""
    path = tmp_path / "input.ndjson"
    path.write_bytes(lines("The bytes as scanned."))
    scan = local._scan

    def scan_then_change(scanned: Path) -> tuple[str, int, int]:
        found = scan(scanned)
        scanned.write_bytes(lines("The bytes as changed."))  # the same size
        return found

    monkeypatch.setattr(local, "_scan", scan_then_change)
    with pytest.raises(ConfigError, match="changed while it was imported"):
        await local.import_input(
            str(path), runner=services.runner, config=services.config, shard=None, progress=quiet
        )
    assert await services.store.list_keys("") == []
    assert await services.store.open_uploads("") == []


async def test_an_s3_input_replaced_after_its_job_was_made_fails_the_job(
    services: Services, s3_settings: S3Settings
) -> None:
    """The job id came from the key and size alone, and reads were not pinned: an object
    replaced by one of the same size was the same job, read at the old offsets, and it
    succeeded over the new bytes. Now it fails naming the ETag, and the replaced object
    is a job of its own."""
    store = services.store
    first = lines("One.", "Two.")
    await store.upload("inputs/a.ndjson", one_chunk(first), content_type="x", limit=1000)
    source = f"s3://{s3_settings.bucket}/{s3_settings.prefix}/inputs/a.ndjson"
    made = await local._s3_manifest(source, store, services.config, None)
    assert made.input_sha256 == hashlib.sha256(first).hexdigest()
    await services.jobs.create(made)
    replaced = lines("Uno.", "Dos.")
    assert len(replaced) == len(first)
    await store.upload("inputs/a.ndjson", one_chunk(replaced), content_type="x", limit=1000)
    final = await services.runner.run(made.job)
    assert final is not None
    assert final.state == "failed"
    assert final.error is not None
    assert "was replaced" in final.error
    assert final.counts.created == 0
    again = await local._s3_manifest(source, store, services.config, None)
    assert again.job != made.job


@pytest.mark.parametrize("resumed", [False, True])
async def test_an_input_that_is_not_the_manifests_fails_at_the_jobs_end(
    services: Services, resumed: bool
) -> None:
    """Bytes that changed behind an unchanged ETag (a store that ignores If-Match, bit rot)
    were imported as the job's input; now its SHA-256 is checked at the end: hashed on
    the way when the job read it all in one run, read again when it was resumed."""
    store = services.store
    data = lines("Alpha.", "Beta.", "Gamma.")
    uploaded = await store.upload("inputs/b.ndjson", one_chunk(data), content_type="x", limit=99)
    manifest = model.Manifest(
        job="4" * 32,
        created_at="2026-12-04T00:00:00.000000Z",
        channel="cli",
        input_key="inputs/b.ndjson",
        input_bytes=uploaded.size,
        input_sha256="0" * 64,  # not the input's
        input_lines=3,
        input_etag=(await store.head("inputs/b.ndjson")).etag,
    )
    checkpoint = await services.jobs.create(manifest)
    if resumed:  # its first line was done by an earlier run
        await services.jobs.advance(
            manifest.job, checkpoint, next_line=2, next_offset=data.index(b"\n") + 1
        )
    final = await services.runner.run(manifest.job)
    assert final is not None
    assert final.state == "failed"
    assert final.error is not None
    assert f"has SHA-256 {uploaded.sha256.hex()}, not the {'0' * 64}" in final.error
    right = msgspec.structs.replace(manifest, input_sha256=uploaded.sha256.hex())
    assert await input_changed(store, right, None) is None
