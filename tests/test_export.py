"""`vellum export --bagit`: bags the `bagit` package validates, holding the archive's bytes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from pathlib import Path

import bagit
import msgspec
import pytest

from service.analysis import Analyzer
from service.archive import Archive
from service.jobs.export import export_bags
from service.jobs.reprocess import reprocess
from service.storage.memory import MemoryStore
from service.storage.s3 import S3Settings
from service.types import record_decoder
from tests.test_cli import vellum
from tests.test_maintenance import FIXTURE, SEED, flip_a_bit

CP1252 = b"Caf\xe9 \x93quoted\x94 \x97 done\x85\n"
SOURCE = {
    "url": "https://example.org/a",
    "title": "A title",
    "authors": ["Ann Author"],
    "published_at": "3 March 2026",
}


async def export(settings: S3Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(vellum, settings, "export", *args)


async def two_versions(store) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    """A document an older normalizer made, reprocessed: versions 1 and 2."""
    fixture = record_decoder.decode(FIXTURE.read_bytes())
    old = msgspec.structs.replace(
        fixture,
        provenance=msgspec.structs.replace(fixture.provenance, normalizer_version="0.1"),
    )
    archive = Archive(store)
    original = SEED.read_bytes()
    await archive.put_original(
        original, sha256=hashlib.sha256(original).digest(), media_type="text/plain"
    )
    await archive.put_record(old)
    assert (await reprocess(archive, Analyzer(0), [old.id])).written == 1
    return old.id, original


async def test_export_writes_bags_that_bagit_validates(
    client, store, s3_settings: S3Settings, tmp_path: Path
) -> None:
    posted: dict[str, bytes] = {}
    response = await client.post(
        "/v1/documents",
        data=CP1252,
        headers={"Content-Type": "text/plain; charset=windows-1252"},
    )
    assert response.status == 201
    posted[(await response.json())["id"]] = CP1252
    text = "Body text, “quoted”."
    response = await client.post(
        "/v1/documents", json={"text": text, "source": SOURCE, "metadata": {"desk": "metro"}}
    )
    assert response.status == 201
    json_id = (await response.json())["id"]
    posted[json_id] = text.encode()  # a JSON submission's original is its text in UTF-8
    reprocessed, original = await two_versions(store)
    posted[reprocessed] = original
    bags = tmp_path / "bags"

    first = await export(s3_settings, "--bagit", str(bags), json_id)
    assert first.returncode == 0, first.stderr
    assert f"written: {bags / json_id}" in first.stdout
    every = await export(s3_settings, "--bagit", str(bags), "--all")
    assert every.returncode == 0, every.stderr
    assert f"skipped: {bags / json_id}" in every.stdout
    assert "2 bags written, 1 already there" in every.stdout
    assert "export: 3/3 documents (100%)" in every.stderr.splitlines()[-1]  # its progress
    assert sorted(path.name for path in bags.iterdir()) == sorted(posted)  # no partial bags

    for document_id, body in posted.items():
        bag = bagit.Bag(str(bags / document_id))
        bag.validate()
        assert sorted(bag.algorithms) == ["sha256", "sha512"]
        assert bag.info["External-Identifier"] == document_id
        assert bag.info["Vellum-Original-SHA256"] == hashlib.sha256(body).hexdigest()
        data = bags / document_id / "data"
        payload = list(data.iterdir())
        size = sum(path.stat().st_size for path in payload)
        assert bag.info["Payload-Oxum"] == f"{size}.{len(payload)}"
        assert (data / "original").read_bytes() == body
        versions = await (await client.get(f"/v1/documents/{document_id}/versions")).json()
        numbers = [entry["version"] for entry in versions["versions"]]
        assert sorted(path.name for path in data.glob("record-v*.json")) == [
            f"record-v{n}.json" for n in numbers
        ]
        for n in numbers:
            archived = await client.get(f"/v1/documents/{document_id}?version={n}")
            assert (data / f"record-v{n}.json").read_bytes() == await archived.read()
        provenance = json.loads((data / "provenance.jsonld").read_bytes())
        assert provenance["@graph"][1]["@id"].startswith("urn:vellum:archive/v1/documents/")
    assert bagit.Bag(str(bags / json_id)).info["Vellum-Source-URL"] == SOURCE["url"]
    assert len(list((bags / reprocessed / "data").glob("record-v*.json"))) == 2

    damaged = bags / json_id / "data" / "original"
    damaged.write_bytes(damaged.read_bytes().replace(b"Body", b"body"))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bags / json_id)).validate()


async def test_export_refuses_unknown_ids_and_bad_arguments(
    s3_settings: S3Settings, tmp_path: Path
) -> None:
    bags = tmp_path / "bags"
    unknown = await export(s3_settings, "--bagit", str(bags), "a" * 32)
    assert unknown.returncode == 2
    assert f"no document {'a' * 32}" in unknown.stderr
    assert not bags.exists() or not any(bags.iterdir())
    neither = await export(s3_settings, "--bagit", str(bags))
    assert neither.returncode == 2
    assert "--all" in neither.stderr
    malformed = await export(s3_settings, "--bagit", str(bags), "not-an-id")
    assert malformed.returncode == 2
    assert "document ids are" in malformed.stderr


async def test_export_reports_a_corrupt_original_leaves_no_bag_and_goes_on(
    client, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """One rotten original stopped the whole export (exit 2, no bag at all); now it is
    reported and left out, the others are bagged, and the exit status is 1."""
    ids = []
    for text in ("The first document.", "This original will rot.", "The third document."):
        response = await client.post("/v1/documents", json={"text": text})
        ids.append((await response.json())["id"])
    rotten = (await (await client.get(f"/v1/documents/{ids[1]}")).json())["original"]["sha256"]
    flip_a_bit(s3_settings, f"originals/sha256/{rotten}")
    bags = tmp_path / "bags"
    result = await export(s3_settings, "--bagit", str(bags), "--all")
    assert result.returncode == 1, result.stderr
    original_key = f"originals/sha256/{rotten}"
    assert f"failed: {ids[1]}: integrity-error: {original_key} does not match" in result.stdout
    assert "2 bags written, 0 already there, 1 failed" in result.stdout
    assert sorted(path.name for path in bags.iterdir()) == sorted([ids[0], ids[2]])
    for good in (ids[0], ids[2]):
        bagit.Bag(str(bags / good)).validate()


async def test_an_export_report_keeps_counts_not_ids(tmp_path: Path) -> None:
    """`export` kept the id of every document it bagged or skipped until its end: its
    memory grew with the archive. Now the report holds counts, and the failed only."""
    document_ids = [f"{n:064x}" for n in range(10_000)]
    for document_id in document_ids:  # bagged by an earlier export: skipped
        (tmp_path / document_id).mkdir()
    heard = 0

    def count(document_id: str, outcome: str) -> None:
        nonlocal heard
        heard += 1

    report = await export_bags(Archive(MemoryStore()), iter(document_ids), tmp_path, on_bag=count)
    assert (report.written, report.skipped, report.failed, heard) == (0, 10_000, [], 10_000)
    assert len(msgspec.json.encode(report)) < 100  # before: 10,000 ids of 64 characters
