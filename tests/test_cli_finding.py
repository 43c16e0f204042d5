"""`vellum find`, `vellum changes` and `vellum reindex` as a user runs them, against a real
S3 server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.storage.s3 import S3ObjectStore, S3Settings
from tests.servers import clean_environment, run_vellum, s3_environment

SETTLE = {"VELLUM_CHANGES_SETTLE_SECONDS": "0.5"}


def vellum(settings: S3Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_vellum(*args, env=s3_environment(settings) | SETTLE)


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def imported(tmp_path: Path, settings: S3Settings) -> None:
    source = tmp_path / "input.ndjson"
    documents = [
        {"text": "One.", "source": {"url": "https://example.com/a", "external_id": "x-1"}},
        {"text": "Two.", "source": {"url": "http://www.example.com/a", "title": "Again"}},
        {"text": "Three.", "source": {"url": "https://news.example.com/b"}},
    ]
    source.write_text("".join(json.dumps(document) + "\n" for document in documents))
    result = vellum(settings, "import", str(source))
    assert result.returncode == 0, result.stderr


def test_find_changes_and_reindex(
    tmp_path: Path, s3_settings: S3Settings, store: S3ObjectStore
) -> None:
    imported(tmp_path, s3_settings)
    exact = vellum(s3_settings, "find", "--url", "example.com/a")
    assert exact.returncode == 0, exact.stderr
    captures = lines(exact.stdout)
    # The import's lines run concurrently, so which of the two arrived first varies.
    assert sorted(str(item["title"]) for item in captures) == ["Again", "None"]
    received = [str(item["received_at"]) for item in captures]
    assert received == sorted(received, reverse=True)  # newest first
    domain = vellum(s3_settings, "find", "--url", "example.com", "--match", "domain")
    assert len(lines(domain.stdout)) == 3
    by_id = vellum(s3_settings, "find", "--external-id", "x-1")
    assert [item["url"] for item in lines(by_id.stdout)] == ["https://example.com/a"]
    future = vellum(s3_settings, "find", "--url", "example.com/a", "--from", "2999")
    assert (future.returncode, future.stdout) == (0, "")
    bad = vellum(s3_settings, "find", "--url", "example.com/a", "--to", "2026-99")
    assert bad.returncode == 2
    assert "--to" in bad.stderr

    time.sleep(0.6)  # the settle window
    feed = vellum(s3_settings, "changes")
    assert feed.returncode == 0, feed.stderr
    items = lines(feed.stdout)
    assert len(items) == 3
    assert "next: " in feed.stderr
    rest = vellum(s3_settings, "changes", "--after", str(items[0]["cursor"]))
    assert [item["id"] for item in lines(rest.stdout)] == [item["id"] for item in items[1:]]

    keys_before = asyncio.run(store.list_keys("index/"))
    for key in keys_before[:4]:
        asyncio.run(store.delete(key))
    rebuilt = vellum(s3_settings, "reindex")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "reindexed 3 record versions: 4 index entries written" in rebuilt.stdout
    assert asyncio.run(store.list_keys("index/")) == keys_before
    again = vellum(s3_settings, "reindex")
    assert "0 index entries written" in again.stdout


def test_changes_follow_prints_new_versions_until_interrupted(
    tmp_path: Path, s3_settings: S3Settings
) -> None:
    environment = clean_environment() | s3_environment(s3_settings) | SETTLE
    follower = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "changes", "--follow"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        imported(tmp_path, s3_settings)
        assert follower.stdout is not None
        seen = [json.loads(follower.stdout.readline()) for _ in range(3)]
        assert {item["version"] for item in seen} == {1}
    finally:
        os.kill(follower.pid, signal.SIGINT)
        assert follower.wait(30) == 0
