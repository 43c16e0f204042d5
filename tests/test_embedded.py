"""The embedded SeaweedFS server: ports, ownership of the data dir, orphans."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.errors import EmbeddedStorageError
from service.storage.embedded import EmbeddedS3, free_port_pairs, port_candidates
from service.storage.s3 import S3ObjectStore


def test_port_pairs_leave_room_for_grpc_at_plus_10000() -> None:
    pairs = free_port_pairs(5)
    ports = [port for pair in pairs for port in pair]
    assert len(set(ports)) == 10
    for http, grpc in pairs:
        assert grpc == http + 10000
        assert grpc <= 65535


def test_port_pairs_avoid_the_ephemeral_range() -> None:
    """A port found free among the ephemeral ones can go to an outgoing connection before
    weed binds it (seen: `bind: address already in use` on a gRPC port)."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    pairs = free_port_pairs(5)
    assert len(port_candidates()) >= 1000
    for pair in pairs:
        for port in pair:
            assert not low <= port <= high


def start_ready(server: EmbeddedS3) -> None:
    store = S3ObjectStore(server.start())
    try:
        asyncio.run(server.wait_ready(store))
    finally:
        store.close()


def test_a_weed_orphaned_by_a_killed_vellum_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    first = EmbeddedS3(tmp_path, bucket="orphans")
    start_ready(first)
    orphan = first.process
    assert orphan is not None
    # Vellum dies without stopping its child: its lock goes, the weed stays.
    assert first._lock is not None
    first._lock.close()
    first._lock = None

    second = EmbeddedS3(tmp_path, bucket="orphans")
    try:
        start_ready(second)
        assert orphan.wait(timeout=30) is not None  # reaped: it exited
        assert second.process is not None
        assert second.process.poll() is None
    finally:
        second.stop()
        if orphan.poll() is None:
            orphan.kill()


def test_a_second_server_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    first = EmbeddedS3(tmp_path, bucket="owned")
    start_ready(first)
    try:
        with pytest.raises(EmbeddedStorageError, match="in use by another Vellum"):
            EmbeddedS3(tmp_path, bucket="owned").start()
        assert first.process is not None
        assert first.process.poll() is None  # the refused start did not touch it
        assert (tmp_path / "s3" / "weed.pid").read_text() == str(first.process.pid)
    finally:
        first.stop()
    assert not (tmp_path / "s3" / "weed.pid").exists()
