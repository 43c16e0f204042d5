"""The simhash band entries: one path segment after their bucket, and archives written
before 2026-12-07 with the nested form, which readers accept and `vellum reindex` replaces
(docs/format.md, "Indexes")."""

from __future__ import annotations

import hashlib

from service.archive import Archive
from service.finding import keys
from service.finding.entries import IndexWriter
from service.finding.maintenance import reindex, stale_entries
from service.jobs.verify import verify
from service.media import TEXT_PLAIN
from service.storage.port import ObjectStore
from tests.test_finding import SYNDICATED, post

SIMHASH = "0123456789abcdef"
ID = "a" * 32


def test_a_band_entry_is_one_segment_and_both_layouts_parse() -> None:
    flat = keys.band_key(2, SIMHASH, ID, 7)
    assert flat == f"index/simhash/2/89ab/{SIMHASH}.{ID}.000000007"
    assert flat.startswith(keys.band_prefix(2, SIMHASH))
    assert keys.parse_band(flat) == keys.Band(2, SIMHASH, ID, 7, nested=False)
    nested = f"index/simhash/2/89ab/{SIMHASH}/{ID}/000000007"
    assert keys.parse_band(nested) == keys.Band(2, SIMHASH, ID, 7, nested=True)


async def nest(store: ObjectStore, document_id: str, simhash: str) -> list[str]:
    """The document's band entries rewritten in the nested form, as written before
    2026-12-07; their keys."""
    nested = []
    for band in range(keys.BANDS):
        await store.delete(keys.band_key(band, simhash, document_id, 1))
        nested.append(f"{keys.band_prefix(band, simhash)}{simhash}/{document_id}/000000001")
        await store.put_if_absent(
            nested[-1], b"", sha256=hashlib.sha256(b"").digest(), content_type=TEXT_PLAIN
        )
    return nested


async def test_nested_entries_are_found_and_reindex_replaces_them_on_real_s3(  # type: ignore[no-untyped-def]
    client, store, s3_settings
) -> None:
    """An archive of the old layout answers near-duplicates as it is; verify finds nothing
    wrong with it; reindex leaves only flat entries and no folders (SeaweedFS makes one
    of every segment), but keeps a nested entry whose record does not exist for verify."""
    first = await post(client, SYNDICATED)
    simhash = (await (await client.get(f"/v1/documents/{first['id']}")).json())["fingerprints"][
        "simhash"
    ]
    nested = await nest(store, first["id"], simhash)
    copy = await post(client, SYNDICATED + " (AP)")
    assert [near["id"] for near in copy["near_duplicates"]] == [first["id"]]
    similar = await (await client.get(f"/v1/documents/{copy['id']}/similar")).json()
    assert [item["id"] for item in similar["items"]] == [first["id"]]
    assert (await verify(store, settle_seconds=0.0)).findings == []

    orphan = f"{keys.SIMHASH}0/ffff/ffff000000000000/{'b' * 32}/000000001"  # of no record
    await store.put_if_absent(
        orphan, b"", sha256=hashlib.sha256(b"").digest(), content_type=TEXT_PLAIN
    )
    report = await reindex(IndexWriter(Archive(store)))
    assert (report.created, report.removed) == (4, 4)  # the first document's flat entries
    bands = await store.list_keys(keys.SIMHASH)
    assert {keys.parse_band(key).nested for key in bands if key != orphan} == {False}
    assert orphan in bands
    assert not set(nested) & set(bands)
    left = [await store.list_prefixes(keys.band_prefix(b, simhash)) for b in range(keys.BANDS)]
    assert left == [[], [], [], []]
    assert [entry.key for entry in await stale_entries(store, settle_seconds=0.0)] == [orphan]
    similar = await (await client.get(f"/v1/documents/{copy['id']}/similar")).json()
    assert [item["id"] for item in similar["items"]] == [first["id"]]
    assert (await reindex(IndexWriter(Archive(store)))).removed == 0
