"""Memory bounded by bytes (issue #13, item 5): sizes are checked before decoding."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from service import submission
from service.errors import MetadataTooLarge
from service.jobs import imports
from service.jobs.imports import Jobs
from tests.test_imports import NDJSON, wait_done

MIB = 1024 * 1024


def test_oversized_metadata_is_refused_before_it_is_decoded() -> None:
    """1 MiB of `[[],[],…]` used to become about 20 MiB of lists before the size check."""
    lists = b"[]," * (MIB // 3)
    body = b'{"text": "An article.", "metadata": {"k": [' + lists + b"[]]}}"
    tracemalloc.start()
    try:
        with pytest.raises(MetadataTooLarge):
            submission.from_json_document(body, max_metadata_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(body), f"peak {peak / MIB:.1f} MiB for a {len(body) / MIB:.1f} MiB body"


def test_metadata_within_the_limit_is_decoded_as_before() -> None:
    body = b'{"text": "An article.", "metadata": {"desk": "world", "tags": [1, [2]]}}'
    verified = submission.from_json_document(body, max_metadata_bytes=64)
    assert verified.metadata == {"desk": "world", "tags": [1, [2]]}
    spaced = b'{"text": "a", "metadata": {"k" :   "' + b"x" * 50 + b'"   }}'
    assert submission.from_json_document(spaced, max_metadata_bytes=58).metadata is not None
    assert (
        submission.from_json_document(
            b'{"text": "a", "metadata": null}', max_metadata_bytes=8
        ).metadata
        is None
    )


async def test_an_import_chunk_is_capped_in_bytes(
    client, store, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Chunks were 500 lines whatever their size (500 × 5 MiB lines: 2.5 GiB held)."""
    monkeypatch.setattr(imports, "CHUNK_BYTES", 200)
    data = b"".join(
        json.dumps({"text": f"Line {n}: " + "words " * 10}).encode() + b"\n" for n in range(1, 11)
    )
    response = await client.post("/v1/imports", data=data, headers=NDJSON)
    location = response.headers["Location"]
    status = await wait_done(client, location, seconds=60)
    assert (status["state"], status["created"]) == ("succeeded", 10)
    job = location.rsplit("/", 1)[1]
    chunks = await Jobs(store).chunks(job, "results")
    assert len(chunks) == 4  # lines of about 80 bytes: 3 pass 200 bytes (3, 3, 3, 1)
