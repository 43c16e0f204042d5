"""Every record version ever archived stays readable (tests/fixtures/records/)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service import ids
from service.types import record_decoder, record_encoder

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
SEEDS = Path(__file__).resolve().parents[1] / "seeds"
ARCHIVED = sorted(FIXTURES.glob("vellum.article-*.json"))
ARCHIVED_BYTES = {path.name: path.read_bytes() for path in ARCHIVED}
SEED_ORIGINAL = (SEEDS / "01-nested-quotes.txt").read_bytes()


def test_there_is_a_fixture_for_every_major_version() -> None:
    assert [path.name for path in ARCHIVED] == ["vellum.article-1.json"]


@pytest.mark.parametrize("path", ARCHIVED, ids=lambda path: path.name)
def test_archived_record_decodes_and_names_its_original(path: Path) -> None:
    data = path.read_bytes()
    record = record_decoder.decode(data)
    assert record_encoder.encode(record) + b"\n" == data  # nothing lost or reordered
    original = (SEEDS / "01-nested-quotes.txt").read_bytes()
    assert hashlib.sha256(original).hexdigest() == record.original.sha256
    assert ids.document_id(record.original.sha256, "utf-8", record.source) == record.id


@pytest.mark.parametrize("path", ARCHIVED, ids=lambda path: path.name)
async def test_archived_record_is_served_as_archived(client, store, path: Path) -> None:
    data, original = ARCHIVED_BYTES[path.name], SEED_ORIGINAL
    record = record_decoder.decode(data)
    await store.put_if_absent(
        record.original.key,
        original,
        sha256=hashlib.sha256(original).digest(),
        content_type=record.original.media_type,
    )
    await store.put_if_absent(
        ids.record_key(record.id, record.version),
        data,
        sha256=hashlib.sha256(data).digest(),
        content_type="application/json",
    )
    served = await client.get(f"/v1/documents/{record.id}")
    assert await served.read() == data
    provenance = await client.get(f"/v1/documents/{record.id}/provenance")
    assert provenance.status == 200
    assert await (await client.get(f"/v1/documents/{record.id}/original")).read() == original
