"""The embedded SeaweedFS server: ports, ownership of the data dir, orphans."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from service.errors import EmbeddedStorageError
from service.storage.embedded import EmbeddedS3, free_port_pairs, port_candidates
from service.storage.s3 import S3ObjectStore
from service.storage.weed_security import TlsFiles, write_certificates


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
    server.start()
    asyncio.run(server.wait_ready())


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


def _http(
    url: str,
    data: bytes | None = None,
    method: str = "GET",
    context: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_internal_ports_refuse_requests_without_the_signing_key(tmp_path: Path) -> None:
    """Only the S3 port checks credentials; the filer and volume HTTP ports answered
    anyone on the machine (read, overwrite, delete any object) before they were signed.
    Even a client holding the TLS certificate (below) needs a signed token."""
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
        tls = _tls(_files(server), own=True, alpn="http/1.1")
        filer = f"https://127.0.0.1:{server.ports['filer.port']}"
        assert _http(f"{filer}/buckets/private/doc", context=tls)[0] == 401
        assert _http(f"{filer}/buckets/private/", context=tls)[0] == 401
        assert _http(f"{filer}/buckets/private/doc", b"overwritten", "PUT", tls)[0] == 401
        assert _http(f"{filer}/buckets/private/doc", method="DELETE", context=tls)[0] == 401
        master = f"https://127.0.0.1:{server.ports['master.port']}"
        status, assigned = _http(f"{master}/dir/assign", context=tls)
        assert status == 200
        assert "auth" not in json.loads(assigned)  # no token for whoever asks
        volume = f"https://127.0.0.1:{server.ports['volume.port']}"
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
            urllib.request.urlopen(upload, timeout=10, context=tls)
        assert refused.value.code == 401
        assert _http(f"{volume}/{fid}", context=tls)[0] == 401
        assert asyncio.run(store.get("doc")) == body  # S3 itself is unaffected
    finally:
        asyncio.run(store.close())
        server.stop()


GRPC_PORTS = ("master.port.grpc", "volume.port.grpc", "filer.port.grpc", "s3.port.grpc")
GRPC_PORTS += ("admin.port.grpc",)
# An HTTP/2 client's first bytes: the preface and an empty SETTINGS frame.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


def _files(server: EmbeddedS3) -> TlsFiles:
    tls = server.root / "tls"
    return TlsFiles(tls / "ca.crt", tls / "weed.crt", tls / "weed.key")


def _tls(
    files: TlsFiles, *, own: bool = False, client: TlsFiles | None = None, alpn: str = "h2"
) -> ssl.SSLContext:
    """A TLS client trusting the server's CA of `files`; presenting that launch's own
    certificate when `own`, or `client`'s certificate."""
    context = ssl.create_default_context(cafile=files.ca)
    context.set_alpn_protocols([alpn])
    presented = files if own else client
    if presented is not None:
        context.load_cert_chain(presented.cert, presented.key)
    return context


def _speaks_http2(address: int | str, context: ssl.SSLContext | None = None) -> bool:
    """Whether a TCP port on 127.0.0.1 (or a unix socket's path) answers an HTTP/2 client
    preface (gRPC's transport) with the server's SETTINGS frame, in plain text or over TLS
    with `context`."""
    if isinstance(address, int):
        raw = socket.create_connection(("127.0.0.1", address), timeout=10)
    else:
        raw = socket.socket(socket.AF_UNIX)
        raw.settimeout(10)
        raw.connect(address)
    with raw:
        try:
            channel = (
                raw if context is None else context.wrap_socket(raw, server_hostname="127.0.0.1")
            )
            channel.sendall(PREFACE)
            answer = b""
            while len(answer) < 9:
                chunk = channel.recv(9 - len(answer))
                if not chunk:
                    break
                answer += chunk
        except (ssl.SSLError, ConnectionError):
            return False
    return len(answer) == 9 and answer[3] == 4 and answer[5:9] == bytes(4)  # SETTINGS, stream 0


HTTP_PORTS = {"master.port": "/dir/status", "volume.port": "/status", "filer.port": "/"}


def _status(server: EmbeddedS3, port: str, context: ssl.SSLContext | None = None) -> int | str:
    """The status of a GET on one of weed's HTTP ports (`HTTP_PORTS`), in plain HTTP or
    over TLS with `context`, or the name of the error that came instead of an answer."""
    scheme = "http" if context is None else "https"
    if context is not None:
        context.set_alpn_protocols(["http/1.1"])
    url = f"{scheme}://127.0.0.1:{server.ports[port]}{HTTP_PORTS[port]}"
    try:
        return _http(url, context=context)[0]
    except urllib.error.URLError as error:
        return type(error.reason).__name__
    except OSError as error:  # the TLS alert after the handshake, a reset
        return type(error).__name__


def _assert_closed_to_strangers(server: EmbeddedS3, stranger: TlsFiles) -> None:
    """Every gRPC port and the HTTP ports of master, volume and filer refuse a client
    without a certificate of the server's CA (in plain text, with none, with one of
    another CA), and let in one with the launch's own certificate."""
    files = _files(server)
    for name in GRPC_PORTS:
        port = server.ports[name]
        # weed also serves each gRPC port on a unix socket in /tmp, the same way
        unix = f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{port}.sock"
        for address in (port, unix):
            assert not _speaks_http2(address), address
            assert not _speaks_http2(address, _tls(files)), address
            assert not _speaks_http2(address, _tls(files, client=stranger)), address
            assert _speaks_http2(address, _tls(files, own=True)), address
    for port in HTTP_PORTS:
        assert _status(server, port) == 400, port  # "an HTTP request to an HTTPS server"
        assert not isinstance(_status(server, port, _tls(files)), int), port
        assert not isinstance(_status(server, port, _tls(files, client=stranger)), int), port
    assert _status(server, "master.port", _tls(files, own=True)) == 200
    assert _status(server, "volume.port", _tls(files, own=True)) == 200
    assert _status(server, "filer.port", _tls(files, own=True)) == 401  # and the JWT


def test_the_grpc_and_http_ports_refuse_clients_without_the_certificate(tmp_path: Path) -> None:
    """The gRPC ports (full control of the cluster: a filer's entries, volumes, files) and
    the master's HTTP port (volume ids and locations, file ids for the asking) answered
    anyone on the machine; now only a client with a certificate of this launch's CA, and
    the volume and filer HTTP ports (signed by JWT before) ask for it too."""
    stranger = write_certificates(tmp_path / "stranger", common_name="stranger")
    server = EmbeddedS3(tmp_path / "data", bucket="guarded")
    store = S3ObjectStore(server.start())
    try:
        asyncio.run(server.wait_ready(store))
        for name in GRPC_PORTS:  # before: an HTTP/2 server's SETTINGS to a plain preface
            assert not _speaks_http2(server.ports[name]), name
        assert _status(server, "master.port") != 200  # before: 200 and the topology
        _assert_closed_to_strangers(server, stranger)
        body = b"still served"
        asyncio.run(
            store.put_if_absent(
                "doc", body, sha256=hashlib.sha256(body).digest(), content_type="text/plain"
            )
        )
        assert asyncio.run(store.get("doc")) == body
        tls = tmp_path / "data" / "s3" / "tls"
        assert tls.stat().st_mode & 0o777 == 0o700
        assert (tls / "weed.key").stat().st_mode & 0o777 == 0o600
        assert "PRIVATE KEY" not in (tls / "ca.crt").read_text()  # the CA's key stays in memory
    finally:
        asyncio.run(store.close())
        server.stop()
    assert not (tmp_path / "data" / "s3" / "tls").exists()


def test_a_restarted_server_gets_new_certificates_and_stays_closed(tmp_path: Path) -> None:
    """`supervise` relaunches a killed `weed` with a new CA: the previous launch's
    certificate no longer gets in, the new one does, and S3 works."""
    stranger = write_certificates(tmp_path / "stranger", common_name="stranger")
    kept = tmp_path / "first-launch"
    server = EmbeddedS3(tmp_path / "data", bucket="restarted")
    store = S3ObjectStore(server.start())

    async def kill_and_check_the_restart() -> None:
        await server.wait_ready(store)
        shutil.copytree(server.root / "tls", kept)
        previous = TlsFiles(kept / "ca.crt", kept / "weed.crt", kept / "weed.key")
        supervisor = asyncio.create_task(server.supervise(store))
        try:
            first = server.process
            assert first is not None
            first.kill()
            while server.process is first:  # noqa: ASYNC110 (supervise swaps it; no event)
                await asyncio.sleep(0.1)
            await server.wait_ready(store)
            _assert_closed_to_strangers(server, stranger)
            for name in GRPC_PORTS:
                port = server.ports[name]
                assert not _speaks_http2(port, _tls(_files(server), client=previous)), name
            for port in HTTP_PORTS:
                assert not isinstance(
                    _status(server, port, _tls(_files(server), client=previous)), int
                )
            body = b"after the restart"
            await store.put_if_absent(
                "doc", body, sha256=hashlib.sha256(body).digest(), content_type="text/plain"
            )
            assert await store.get("doc") == body
        finally:
            server.stop()  # ends the supervisor's wait for the child
            await supervisor

    try:
        asyncio.run(kill_and_check_the_restart())
    finally:
        asyncio.run(store.close())
        server.stop()
