"""The embedded SeaweedFS server: ports, ownership of the data dir, orphans."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.errors import EmbeddedStorageError
from service.storage.embedded import EmbeddedS3, free_port_pairs, port_candidates
from service.storage.s3 import S3ObjectStore
from tests.servers import wait_ready


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
    asyncio.run(wait_ready(server, server.start()))


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


def _http(url: str, data: bytes | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_internal_ports_refuse_requests_without_the_signing_key(tmp_path: Path) -> None:
    """Only the S3 port checks credentials; the filer and volume HTTP ports answered
    anyone on the machine (read, overwrite, delete any object) before they were signed."""
    server = EmbeddedS3(tmp_path, bucket="private")
    settings = server.start()
    store = S3ObjectStore(settings)
    try:
        asyncio.run(server.wait_ready(store))
        body = b"archived bytes"
        asyncio.run(
            store.put_if_absent(
                "doc", body, sha256=hashlib.sha256(body).digest(), content_type="text/plain"
            )
        )
        filer = f"http://127.0.0.1:{server.ports['filer.port']}"
        assert _http(f"{filer}/buckets/private/doc")[0] == 401
        assert _http(f"{filer}/buckets/private/")[0] == 401
        assert _http(f"{filer}/buckets/private/doc", b"overwritten", "PUT")[0] == 401
        assert _http(f"{filer}/buckets/private/doc", method="DELETE")[0] == 401
        master = f"http://127.0.0.1:{server.ports['master.port']}"
        status, assigned = _http(f"{master}/dir/assign")
        assert status == 200
        assert "auth" not in json.loads(assigned)  # no token for whoever asks
        volume = f"http://127.0.0.1:{server.ports['volume.port']}"
        fid = json.loads(assigned)["fid"]
        form = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
            b"planted\r\n--b--\r\n"
        )
        upload = urllib.request.Request(
            f"{volume}/{fid}",
            data=form,
            method="POST",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=10)
        assert refused.value.code == 401
        assert _http(f"{volume}/{fid}")[0] == 401
        assert asyncio.run(store.get("doc")) == body  # S3 itself is unaffected
    finally:
        asyncio.run(store.close())
        server.stop()
