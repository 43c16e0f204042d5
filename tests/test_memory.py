"""Memory bounded by bytes (issue #13, item 5): sizes are checked before decoding."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from service import submission
from service.errors import MetadataTooLarge
from service.jobs import imports
from service.jobs.imports import Jobs
from tests.servers import clean_environment, s3_environment
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


# Run in a child: a small import first (modules loaded, pools and threads started), then
# the address space capped at what that took plus HEADROOM, then the large import. Last,
# an allocation of the input's size must fail: the cap is real.
LIMITED_IMPORT = """
import asyncio, resource, sys
from service.commands import run_import
from service.config import Config
from service.malloc import limit_malloc_arenas

limit_malloc_arenas()
small, large, headroom, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def address_space():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))

async def main():
    config = Config.from_env()
    await run_import(config, small, None, None)
    resource.setrlimit(resource.RLIMIT_AS, (address_space() + headroom, resource.RLIM_INFINITY))
    status = await run_import(config, large, None, None)
    try:
        bytearray(size)
    except MemoryError:
        print("the cap holds")
    return status

sys.exit(asyncio.run(main()))
"""
HEADROOM = 128 * MIB
LARGE_LINE = json.dumps({"text": "words " * (4 * MIB // 6), "unknown": True}).encode() + b"\n"


@pytest.mark.integration
def test_an_import_larger_than_its_memory_cap_runs_under_it(s3_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """48 lines of 4 MiB (192 MiB) under an address space capped at 128 MiB more than a
    small import took: a reader or chunk that held the input (or 500 such lines) would
    die of MemoryError; each line is read, decoded, refused (an unknown field), and the
    two small documents among them stored."""
    small, large = tmp_path / "small.ndjson", tmp_path / "large.ndjson"
    small.write_bytes(b'{"text": "A small first import."}\n')
    with large.open("wb") as out:
        out.write(b'{"text": "The first small document."}\n')
        for _ in range(48):
            out.write(LARGE_LINE)
        out.write(b'{"text": "The last small document."}\n')
    env = {**s3_environment(s3_settings), "VELLUM_ANALYSIS_PROCESSES": "0"}
    size = large.stat().st_size
    assert size > HEADROOM
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_IMPORT, str(small), str(large), str(HEADROOM), str(size)],
        env={**clean_environment(), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "MemoryError" not in done.stderr, done.stderr[-3000:]
    assert "50 lines: 2 created, 0 duplicates, 48 failed" in done.stdout, done.stderr[-3000:]
    assert "the cap holds" in done.stdout
    assert done.returncode == 1  # lines failed
