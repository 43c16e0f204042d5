"""One import job's trouble never stops the others (issue #13, item 3), on the real S3 server."""

from __future__ import annotations

import hashlib
import json

import pytest

from service.jobs import model
from service.jobs.imports import Jobs, now_text
from service.normalize import Analysis, analyze
from service.storage.s3 import S3ObjectStore
from tests.test_imports import NDJSON, ndjson, wait_done

# Job ids sort by their characters, digits first: these jobs come before any new one.
STUCK = "2" * 32
UNREADABLE = "3" * 32


async def put_input(store: S3ObjectStore, job: str, data: bytes) -> model.Manifest:
    sha256 = hashlib.sha256(data).digest()
    await store.put_if_absent(
        model.input_key(job), data, sha256=sha256, content_type="application/x-ndjson"
    )
    manifest = model.Manifest(
        job=job,
        created_at=now_text(),
        channel="http",
        input_key=model.input_key(job),
        input_bytes=len(data),
        input_sha256=sha256.hex(),
        input_lines=data.count(b"\n"),
    )
    await Jobs(store)._put_json(model.manifest_key(job), manifest)
    return manifest


def lines(*texts: str) -> bytes:
    return b"".join(json.dumps({"text": text}).encode() + b"\n" for text in texts)


async def test_a_job_without_its_first_checkpoint_gets_it_and_the_others_run(
    client, store: S3ObjectStore
) -> None:  # type: ignore[no-untyped-def]
    """A crash between a job's manifest and its first checkpoint stopped every sweep."""
    await put_input(store, STUCK, lines("Of the job whose first checkpoint was lost."))
    response = await client.post("/v1/imports", data=lines("One.", "Two."), headers=NDJSON)
    assert response.status == 202
    status = await wait_done(client, response.headers["Location"], seconds=60)
    assert (status["state"], status["created"]) == ("succeeded", 2)
    recovered = await wait_done(client, f"/v1/imports/{STUCK}", seconds=60)
    assert (recovered["state"], recovered["created"]) == ("succeeded", 1)


async def test_a_job_whose_checkpoint_is_unreadable_fails_and_the_others_run(
    client, store: S3ObjectStore
) -> None:  # type: ignore[no-untyped-def]
    await put_input(store, UNREADABLE, lines("Of the job with a rotten checkpoint."))
    garbage = b"{not json"
    await store.put_if_absent(
        model.checkpoint_key(UNREADABLE, 1),
        garbage,
        sha256=hashlib.sha256(garbage).digest(),
        content_type="application/json",
    )
    response = await client.post("/v1/imports", data=lines("Three."), headers=NDJSON)
    status = await wait_done(client, response.headers["Location"], seconds=60)
    assert (status["state"], status["created"]) == ("succeeded", 1)
    failed = await wait_done(client, f"/v1/imports/{UNREADABLE}", seconds=60)
    assert failed["state"] == "failed"
    assert "could not be read" in failed["error"]


async def test_a_line_that_raises_is_a_failed_line_and_the_job_goes_on(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """An error that is not the request's fault (here: the analysis raises) fails its line."""

    def exploding(text: str, title: str | None) -> Analysis:
        if "explodes" in text:
            raise RuntimeError("the analyser broke")
        return analyze(text, title)

    monkeypatch.setattr("service.analysis.analyze", exploding)  # in-process analysis
    data = lines("Line one is fine.", "Line two explodes.", "Line three is fine.")
    response = await client.post("/v1/imports", data=data, headers=NDJSON)
    location = response.headers["Location"]
    status = await wait_done(client, location, seconds=60)
    assert (status["state"], status["created"], status["failed"]) == ("succeeded", 2, 1)
    [error] = await ndjson(client, f"{location}/errors")
    assert error["line"] == 2
    assert error["problem"]["type"] == "/problems/internal-error"
    assert "the analyser broke" not in json.dumps(error)
    after = await client.post("/v1/imports", data=lines("Later."), headers=NDJSON)
    later = await wait_done(client, after.headers["Location"], seconds=60)
    assert later["state"] == "succeeded"
