"""`vellum import` and `vellum get` as a user runs them, against a real S3 server."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

from service import ids
from service.storage.s3 import S3ObjectStore, S3Settings
from tests.conftest import all_keys
from tests.servers import run_vellum, s3_environment
from tests.test_imports import build_input


def vellum(settings: S3Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vellum(*args, env=s3_environment(settings))


def summary_counts(output: str) -> tuple[int, int, int, int]:
    found = re.search(
        r"([\d,]+) lines: ([\d,]+) created, ([\d,]+) duplicates, ([\d,]+) failed", output
    )
    assert found, output
    total, created, duplicates, failed = (int(group.replace(",", "")) for group in found.groups())
    return total, created, duplicates, failed


def test_import_a_file_then_run_it_again(
    tmp_path: Path, s3_settings: S3Settings, store: S3ObjectStore
) -> None:
    lines = 700
    body, bad, repeats = build_input(lines, seed=3)
    source = tmp_path / "input.ndjson"
    source.write_bytes(body)

    first = vellum(s3_settings, "import", str(source))
    assert first.returncode == 1, first.stderr  # some lines failed
    expected = (lines, lines - len(bad) - len(repeats), len(repeats), len(bad))
    assert summary_counts(first.stdout) == expected
    job = re.search(r"import ([a-z2-7]{32}): succeeded", first.stdout)
    assert job, first.stdout
    records = [key for key in asyncio.run(all_keys(store)) if ids.is_version_key(key)]
    assert len(records) == expected[1]

    again = vellum(s3_settings, "import", str(source))
    assert f"import {job.group(1)}: succeeded" in again.stdout  # the same job, found again
    assert summary_counts(again.stdout) == expected
    assert len([k for k in asyncio.run(all_keys(store)) if ids.is_version_key(k)]) == expected[1]


def test_import_one_shard(tmp_path: Path, s3_settings: S3Settings) -> None:
    source = tmp_path / "input.ndjson"
    source.write_bytes(
        b"".join(json.dumps({"text": f"line {n}"}).encode() + b"\n" for n in range(1, 11))
    )
    result = vellum(s3_settings, "import", str(source), "--shard", "1/3")
    assert result.returncode == 0, result.stderr
    assert summary_counts(result.stdout) == (3, 3, 0, 0)  # lines 2, 5, 8
    bad = vellum(s3_settings, "import", str(source), "--shard", "3/3")
    assert bad.returncode == 2
    assert "shard" in bad.stderr


def test_get_prints_the_record_and_the_original(tmp_path: Path, s3_settings: S3Settings) -> None:
    source = tmp_path / "one.ndjson"
    text = "A single “quoted” document."
    source.write_text(json.dumps({"text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert vellum(s3_settings, "import", str(source)).returncode == 0
    listing = asyncio.run(_record_ids(s3_settings))
    (document_id,) = listing
    record = vellum(s3_settings, "get", document_id)
    assert record.returncode == 0, record.stderr
    assert json.loads(record.stdout)["text"] == text
    original = vellum(s3_settings, "get", document_id, "--original")
    assert original.stdout == text
    missing = vellum(s3_settings, "get", "a" * 32)
    assert missing.returncode == 2
    assert "no document" in missing.stderr


async def _record_ids(settings: S3Settings) -> list[str]:
    store = S3ObjectStore(settings)
    try:
        return sorted({key.split("/")[1] for key in await store.list_keys("records/")})
    finally:
        await store.close()


def test_import_every_object_under_an_s3_prefix(
    s3_settings: S3Settings, store: S3ObjectStore
) -> None:
    async def put_inputs() -> None:
        for name, first in (("a.ndjson", 1), ("b.ndjson", 4)):
            body = b"".join(
                json.dumps({"text": f"prefixed {n}"}).encode() + b"\n"
                for n in range(first, first + 3)
            )

            async def chunks(data: bytes = body):  # type: ignore[no-untyped-def]
                yield data

            await store.upload(
                f"inputs/batch/{name}", chunks(), content_type="application/x-ndjson", limit=10**6
            )

    asyncio.run(put_inputs())
    base = f"s3://{s3_settings.bucket}/{s3_settings.prefix}/inputs/batch/"
    result = vellum(s3_settings, "import", base)
    assert result.returncode == 0, result.stderr
    assert f"{base}a.ndjson:" in result.stdout
    assert f"{base}b.ndjson:" in result.stdout
    assert result.stdout.count("3 lines: 3 created") == 2
    elsewhere = vellum(s3_settings, "import", "s3://another-bucket/x.ndjson")
    assert elsewhere.returncode == 2
    assert "outside the archive" in elsewhere.stderr


def test_import_through_a_server_that_needs_a_key(tmp_path: Path, s3_settings: S3Settings) -> None:
    from service.keys import create_key
    from tests.servers import running_server

    keys = tmp_path / "keys.jsonl"
    key, _ = create_key(keys, ["ingest", "read"])
    source = tmp_path / "input.ndjson"
    source.write_bytes(
        b"".join(json.dumps({"text": f"remote {n}"}).encode() + b"\n" for n in range(5))
    )
    with running_server(
        tmp_path, {**s3_environment(s3_settings), "VELLUM_KEYS_FILE": str(keys)}
    ) as server:
        refused = vellum(s3_settings, "import", str(source), "--url", server.url)
        assert refused.returncode == 2
        assert "401" in refused.stderr or "unauthorized" in refused.stderr
        accepted = run_vellum(
            "import", str(source), "--url", server.url, env={"VELLUM_API_KEY": key}, timeout=120
        )
    assert accepted.returncode == 0, accepted.stderr
    assert summary_counts(accepted.stdout) == (5, 5, 0, 0)
    assert key not in accepted.stdout + accepted.stderr
