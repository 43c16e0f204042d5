"""The embedded SeaweedFS server: ports, ownership of the data dir, orphans."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
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
    # A Vellum process starts its embedded S3 server, then is killed with SIGKILL: it
    # cannot stop its child, and the weed it started stays.
    script = (
        "import asyncio, sys, time\n"
        "from service.storage.embedded import EmbeddedS3\n"
        "from service.storage.s3 import S3ObjectStore\n"
        "server = EmbeddedS3(__import__('pathlib').Path(sys.argv[1]), bucket='orphans')\n"
        "store = S3ObjectStore(server.start())\n"
        "asyncio.run(server.wait_ready(store))\n"
        "print('weed-pid', server.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    vellum = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert vellum.stdout is not None
    line = b""
    while not line.startswith(b"weed-pid "):  # after the server's own log lines
        line = vellum.stdout.readline()
        assert line, "the Vellum process ended before its S3 server was ready"
    orphan = int(line.split()[1])
    vellum.kill()
    vellum.wait()
    assert running(orphan)  # the weed outlived the Vellum that started it

    second = EmbeddedS3(tmp_path, bucket="orphans")
    try:
        start_ready(second)
        assert not running(orphan)  # stopped by the second start
        assert second.process is not None
        assert second.process.poll() is None
    finally:
        second.stop()
        if running(orphan):
            os.kill(orphan, signal.SIGKILL)


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


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
