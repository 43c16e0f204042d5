"""Bulk imports over HTTP against a real S3 server: counts, errors, results, shards."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from service.analysis import Analyzer
from service.archive import Archive
from service.errors import StorageUnavailable
from service.ingest import Ingestor
from service.jobs import model
from service.jobs.imports import CHUNK_LINES, Jobs, Runner, now_text
from service.storage.memory import MemoryStore
from tests.conftest import CORPUS

NDJSON = {"Content-Type": "application/x-ndjson"}
BAD_LINES: dict[str, bytes] = {
    "invalid_json": b'{"text": "unterminated',
    "not_object": b'["a", "list"]',
    "missing_text": b'{"body": "the text under another name"}',
    "empty_text": b'{"text": ""}',
    "whitespace_text": b'{"text": "  \\n\\t "}',
    "text_not_string": b'{"text": 42}',
    "invalid_utf8": b'{"text": "caf\xe9"}',
    "unknown_field": b'{"text": "fine", "extra": true}',
    "blank_line": b"",
}


def build_input(lines: int, seed: int = 7) -> tuple[bytes, dict[int, str], dict[int, int]]:
    """NDJSON with bad lines and repeated documents mixed in.

    Returns the bytes, {line: bad kind}, and {line: the line whose document it repeats}.
    """
    chooser = random.Random(seed)
    out: list[bytes] = []
    bad: dict[int, str] = {}
    repeats: dict[int, int] = {}
    for number in range(1, lines + 1):
        roll = chooser.random()
        if roll < 0.08:
            kind = chooser.choice(sorted(BAD_LINES))
            bad[number] = kind
            out.append(BAD_LINES[kind])
        elif roll < 0.12 and number > 1:
            original = chooser.randrange(1, number)
            while original in bad or original in repeats:
                original = chooser.randrange(1, number)
            if original in bad:
                continue
            repeats[number] = original
            out.append(out[original - 1])
        else:
            text = f"Article {number}. “Quoted words,” said a source. [{seed}]"
            out.append(json.dumps({"text": text, "source": {"external_id": str(number)}}).encode())
    return b"\n".join(out) + b"\n", bad, repeats


async def wait_done(client, location: str, seconds: float = 120) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        while True:
            status: dict[str, Any] = await (await client.get(location)).json()
            if status["state"] in model.TERMINAL:
                return status
            await asyncio.sleep(0.2)


async def ndjson(client, url: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = await client.get(url)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in (await response.read()).splitlines()]


async def test_import_counts_errors_and_results_are_exact(client, store) -> None:
    lines = CHUNK_LINES * 2 + 137  # three chunks, the last one short
    body, bad, repeats = build_input(lines)
    response = await client.post("/v1/imports", data=body, headers=NDJSON)
    assert response.status == 202
    accepted = await response.json()
    assert response.headers["Location"] == f"/v1/imports/{accepted['job']}"
    assert accepted["input_lines"] == lines
    assert accepted["input_bytes"] == len(body)

    status = await wait_done(client, response.headers["Location"])
    assert status["state"] == "succeeded"
    assert status["total"] == lines
    assert status["failed"] == len(bad)
    assert status["duplicates"] == len(repeats)
    assert status["created"] == lines - len(bad) - len(repeats)

    errors = await ndjson(client, status["links"]["errors"])
    assert [entry["line"] for entry in errors] == sorted(bad)
    for entry in errors:
        assert entry["problem"]["status"] in (400, 413, 422), entry
        assert entry["problem"]["type"].startswith("/problems/")
    results = await ndjson(client, status["links"]["results"])
    assert [entry["line"] for entry in results] == [n for n in range(1, lines + 1) if n not in bad]
    by_line = {entry["line"]: entry for entry in results}
    for line, original in repeats.items():
        assert by_line[line]["outcome"] == "duplicate"
        assert by_line[line]["id"] == by_line[original]["id"]
    stored = {key.split("/")[1] for key in await store.list_keys("records/")}
    assert {entry["id"] for entry in results} == stored  # every result id is retrievable

    scrape = await (await client.get("/metrics")).text()
    for outcome, expected in (("created", status["created"]), ("failed", status["failed"])):
        assert f'vellum_import_lines_total{{outcome="{outcome}"}} {float(expected)}' in scrape

    record = await (await client.get(f"/v1/documents/{results[0]['id']}")).json()
    assert record["provenance"]["channel"] == "import"
    assert record["provenance"]["import_job"] == status["job"]
    assert record["provenance"]["import_line"] == results[0]["line"]


async def test_a_line_over_the_document_limit_is_reported_not_fatal(
    make_client, store, config
) -> None:
    import msgspec

    client = await make_client(store, msgspec.structs.replace(config, max_body_bytes=1000))
    big = json.dumps({"text": "x" * 5000}).encode()
    body = b'{"text": "first"}\n' + big + b'\n{"text": "third"}'  # no final newline
    response = await client.post("/v1/imports", data=body, headers=NDJSON)
    status = await wait_done(client, response.headers["Location"])
    assert (status["total"], status["created"], status["failed"]) == (3, 2, 1)
    (error,) = await ndjson(client, status["links"]["errors"])
    assert error["line"] == 2
    assert error["problem"]["type"] == "/problems/payload-too-large"
    assert error["problem"]["limit_bytes"] == 1000


async def test_an_import_over_its_limit_is_413_and_leaves_nothing(
    make_client, store, config
) -> None:
    import msgspec

    client = await make_client(store, msgspec.structs.replace(config, max_import_bytes=100))
    response = await client.post("/v1/imports", data=b'{"text": "a"}\n' * 20, headers=NDJSON)
    problem = await response.json(content_type=None)
    assert response.status == 413
    assert problem["limit_bytes"] == 100
    assert await store.list_keys("") == []


async def test_import_needs_ndjson_and_a_well_formed_job_id(client) -> None:
    response = await client.post("/v1/imports", data=b"{}", headers={"Content-Type": "text/csv"})
    assert response.status == 415
    assert (await client.get("/v1/imports/nope")).status == 400
    assert (await client.get(f"/v1/imports/{'a' * 32}")).status == 404


@pytest.mark.parametrize("count", [1, 3, 7])
async def test_shards_cover_every_line_exactly_once(store, count: int) -> None:
    lines = 300
    body, _, _ = build_input(lines, seed=count)
    jobs = Jobs(store)

    async def chunks():  # type: ignore[no-untyped-def]
        yield body

    uploaded = await store.upload(f"inputs/{count}", chunks(), content_type="x", limit=len(body))
    seen: list[int] = []
    for index in range(count):
        shard = model.Shard(index=index, count=count)
        job = model.job_id_for(uploaded.sha256.hex(), shard)
        await jobs.create(
            model.Manifest(
                job=job,
                created_at=now_text(),
                channel="cli",
                input_key=f"inputs/{count}",
                input_bytes=uploaded.size,
                input_sha256=uploaded.sha256.hex(),
                input_lines=lines,
                shard=shard,
            )
        )
        runner = Runner(
            jobs,
            Ingestor(Archive(store), Analyzer(0)),
            owner="t",
            max_line_bytes=10_000,
            max_metadata_bytes=1000,
        )
        final = await runner.run(job)
        assert final is not None
        assert final.state == "succeeded"
        for kind in ("errors", "results"):
            for key in await jobs.chunks(job, kind):
                seen.extend(
                    json.loads(line)["line"] for line in (await store.get(key)).splitlines()
                )
    assert sorted(seen) == list(range(1, lines + 1))


MAKE_BULK = CORPUS / "make_bulk.py"


@pytest.mark.integration  # a volume test: ten thousand analyses
@pytest.mark.skipif(
    not (CORPUS / "articles.jsonl").is_file(), reason="shared article corpus not present"
)
async def test_ten_thousand_corpus_lines_with_bad_lines_and_duplicates(
    client, store, tmp_path
) -> None:
    bulk, manifest_path = tmp_path / "bulk.ndjson", tmp_path / "manifest.json"
    made = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            str(MAKE_BULK),
            "10000",
            str(bulk),
            "--bad-rate",
            "0.05",
            "--manifest",
            str(manifest_path),
            "--corpus",
            str(CORPUS / "articles.jsonl"),
        ],
        capture_output=True,
        check=True,
    )
    assert made.returncode == 0
    manifest = json.loads(manifest_path.read_text())
    bad_lines = {entry["line"] for entry in manifest["bad_lines"]}
    lines = bulk.read_bytes().split(b"\n")[:10000]
    chooser = random.Random(5)
    repeated = chooser.sample([n for n in range(1, 10001) if n not in bad_lines], 200)
    body = b"\n".join(lines + [lines[n - 1] for n in repeated]) + b"\n"

    response = await client.post("/v1/imports", data=body, headers=NDJSON)
    status = await wait_done(client, response.headers["Location"], seconds=600)
    assert status["state"] == "succeeded"
    assert status["total"] == 10200
    assert status["failed"] == manifest["bad"]
    assert status["duplicates"] == 200
    assert status["created"] == manifest["good"]
    errors = await ndjson(client, status["links"]["errors"])
    assert [entry["line"] for entry in errors] == sorted(bad_lines)
    results = await ndjson(client, status["links"]["results"])
    by_line = {entry["line"]: entry for entry in results}
    for offset, original in enumerate(repeated, start=10001):
        assert by_line[offset]["outcome"] == "duplicate"
        assert by_line[offset]["id"] == by_line[original]["id"]
    stored = {key.split("/")[1] for key in await store.list_keys("records/")}
    assert {entry["id"] for entry in results} == stored


class ResultsFailingPartway(MemoryStore):
    """Storage that fails reading a job's second results chunk, once asked to."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.results_read = 0

    async def get(self, key: str) -> bytes:
        if self.failing and "/results/" in key:
            self.results_read += 1
            if self.results_read > 1:
                raise StorageUnavailable("injected fault: the S3 server went away")
        return await super().get(key)


async def test_a_storage_error_partway_through_a_listing_aborts_it(make_client) -> None:  # type: ignore[no-untyped-def]
    """A storage error after the 200 had begun left a cut-off listing that looked whole
    (or a problem body spliced into it): the connection is aborted instead."""
    store = ResultsFailingPartway()
    client = await make_client(store)
    body = b"".join(
        json.dumps({"text": f"Article {n} of a two-chunk import."}).encode() + b"\n"
        for n in range(CHUNK_LINES + 1)
    )
    started = await client.post("/v1/imports", data=body, headers=NDJSON)
    status = await wait_done(client, started.headers["Location"])
    assert (status["state"], status["created"]) == ("succeeded", CHUNK_LINES + 1)
    store.failing = True
    response = await client.get(status["links"]["results"])
    assert response.status == 200  # the first chunk was read and sent
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert store.results_read == 2
