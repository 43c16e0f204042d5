"""A worker killed with SIGKILL mid-import: the next one resumes, nothing is doubled."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from service import ids
from service.storage.s3 import S3ObjectStore, S3Settings
from tests.conftest import all_keys
from tests.servers import running_server, s3_environment
from tests.test_imports import build_input


def call(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/x-ndjson"} if data else {}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def status_of(url: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(call(url)[2])
    return result


def test_killed_worker_is_resumed_without_duplicates(
    tmp_path: Path, s3_settings: S3Settings, store: S3ObjectStore
) -> None:
    lines = 3000
    body, bad, repeats = build_input(lines, seed=11)
    env = {
        **s3_environment(s3_settings),
        "VELLUM_IMPORT_LEASE_SECONDS": "1",
        "VELLUM_IMPORT_CONCURRENCY": "4",
    }
    with running_server(tmp_path, env) as first:
        status, headers, _ = call(f"{first.url}/v1/imports", body)
        assert status == 202
        location = headers["Location"]
        deadline = time.monotonic() + 120
        while status_of(first.url + location)["total"] < 1000:
            assert time.monotonic() < deadline, "the import made no progress"
            time.sleep(0.05)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
    with running_server(tmp_path, env) as second:
        before = status_of(second.url + location)
        assert before["state"] == "running"
        assert before["total"] < lines
        deadline = time.monotonic() + 180
        while (final := status_of(second.url + location))["state"] == "running":
            assert time.monotonic() < deadline, "the import was not resumed"
            time.sleep(0.2)

    assert final["state"] == "succeeded"
    assert final["total"] == lines
    assert final["failed"] == len(bad)
    assert final["duplicates"] == len(repeats)
    assert final["created"] == lines - len(bad) - len(repeats)
    records = [key for key in asyncio.run(all_keys(store)) if ids.is_version_key(key)]
    assert len(records) == final["created"]  # no document made twice
