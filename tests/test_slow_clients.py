"""Slow and oversized request heads against `vellum serve` over real sockets: a head must
arrive within VELLUM_HEADER_TIMEOUT_SECONDS, and one over aiohttp's size limits is a 400
problem; neither stores anything or logs the head's bytes."""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec
import pytest

from service.storage.s3 import S3ObjectStore, S3Settings
from service.web.protocol import MAX_HEADERS, MAX_LINE_BYTES
from tests.conftest import all_keys
from tests.servers import ServerProcess, running_server, s3_environment
from tests.test_server import log_events, read_response

DEADLINE = 1.0  # VELLUM_HEADER_TIMEOUT_SECONDS of the module's server
TRICKLE_INTERVAL = 0.2  # one header byte this often
TRICKLE_FOR = 10.0  # the longest a trickling client keeps going
CLOSED_WITHIN = DEADLINE + 3.0  # bound for the server's close, well under TRICKLE_FOR
HEAD = b"POST /v1/documents HTTP/1.1\r\nHost: x\r\n"


class Served(NamedTuple):
    server: ServerProcess
    s3: S3Settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Settings) -> Iterator[Served]:
    """One `vellum serve` with a short header deadline and its own S3 prefix."""
    s3 = msgspec.structs.replace(s3_server, prefix=f"tests/{uuid.uuid4().hex}")
    env = {**s3_environment(s3), "VELLUM_HEADER_TIMEOUT_SECONDS": str(DEADLINE)}
    with running_server(tmp_path_factory.mktemp("slow-clients"), env) as server:
        yield Served(server, s3)


class Trickled(NamedTuple):
    closed: bool  # the server closed the connection (EOF or reset)
    seconds: float  # from connecting to the close (or to giving up)
    received: bytes  # what the server sent before closing


def trickle(sock: socket.socket, start: bytes, started: float, *, limit: float) -> Trickled:
    """Send `start`, then one header byte every TRICKLE_INTERVAL until the server closes
    the connection or `limit` seconds have passed since `started`."""
    received = b""
    try:
        sock.sendall(start)
        while time.monotonic() - started < limit:
            if select.select([sock], [], [], TRICKLE_INTERVAL)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return Trickled(True, time.monotonic() - started, received)
                received += chunk
            else:
                sock.sendall(b"a")
    except OSError:  # reset: the server closed with trickled bytes unread
        return Trickled(True, time.monotonic() - started, received)
    return Trickled(False, time.monotonic() - started, received)


def connect(port: int) -> tuple[socket.socket, float]:
    started = time.monotonic()
    return socket.create_connection(("127.0.0.1", port), timeout=30), started


def peer_of(sock: socket.socket) -> str:
    """The server's view of this client: the `peer` it logs."""
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def text_request(text: str, *, extra: bytes = b"") -> bytes:
    body = text.encode()
    return (
        HEAD
        + b"Content-Type: text/plain; charset=utf-8\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def stored_keys(s3: S3Settings) -> list[str]:
    async def listed() -> list[str]:
        store = S3ObjectStore(s3)
        try:
            return sorted(await all_keys(store))
        finally:
            await store.close()

    return asyncio.run(listed())


def header_timeouts(server: ServerProcess) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as response:
        scrape = response.read().decode()
    (value,) = re.findall(r"^vellum_http_header_timeouts_total (\S+)$", scrape, re.MULTILINE)
    return float(value)


def wait_for_event(server: ServerProcess, event: str, peer: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log_events(server.output()):
            if line["event"] == event and line.get("peer") == peer:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no {event} logged for {peer}:\n{server.output()}")


def test_a_client_trickling_its_headers_is_cut_off_at_the_deadline(served: Served) -> None:
    sock, started = connect(served.server.port)
    with sock:
        result = trickle(sock, HEAD + b"X-Slow: ", started, limit=TRICKLE_FOR)
    assert result.closed, f"still open after trickling for {result.seconds:.1f} s"
    assert DEADLINE * 0.9 <= result.seconds < CLOSED_WITHIN
    assert result.received == b""  # closed without an answer: no request was read


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(served: Served) -> None:
    sock, started = connect(served.server.port)
    with sock:
        readable = select.select([sock], [], [], CLOSED_WITHIN)[0]
        assert readable, "the silent connection is still open"
        assert sock.recv(1) == b""
    assert time.monotonic() - started >= DEADLINE * 0.9


def test_a_trickled_keep_alive_follow_up_is_cut_off(served: Served) -> None:
    sock, _ = connect(served.server.port)
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = read_response(sock)
        assert status == 200
        assert headers.get("connection", "").lower() != "close"
        time.sleep(DEADLINE * 1.5)  # idle: the keep-alive timeout governs, not the deadline
        follow_up = time.monotonic()
        result = trickle(sock, HEAD + b"X-Slow: ", follow_up, limit=TRICKLE_FOR)
    assert result.closed, f"still open after trickling for {result.seconds:.1f} s"
    assert result.seconds < CLOSED_WITHIN
    assert result.received == b""


def test_keep_alive_requests_are_served_across_pauses(served: Served) -> None:
    text = f"Kept alive {uuid.uuid4().hex}. “Twice.”"
    sock, _ = connect(served.server.port)
    with sock:
        sock.sendall(text_request(text))
        status, _, body = read_response(sock)
        assert status == 201
        document = json.loads(body)["id"]
        time.sleep(DEADLINE / 2)  # shorter than the deadline
        sock.sendall(text_request(text))
        status, _, body = read_response(sock)
        assert status == 200  # the same connection, the same document: a duplicate
        assert json.loads(body)["id"] == document
        time.sleep(DEADLINE * 2)  # idle longer than the deadline: still open
        sock.sendall(f"GET /v1/documents/{document}/original HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, _, body = read_response(sock)
        assert status == 200
        assert body == text.encode()


def test_without_a_short_deadline_the_same_trickle_is_served(
    tmp_path: Path, s3_settings: S3Settings
) -> None:
    """The control: the trickle above stays open, and is answered, under a longer deadline."""
    env = {**s3_environment(s3_settings), "VELLUM_HEADER_TIMEOUT_SECONDS": "60"}
    with running_server(tmp_path, env) as server:
        sock, started = connect(server.port)
        with sock:
            result = trickle(sock, HEAD + b"X-Slow: ", started, limit=CLOSED_WITHIN)
            assert not result.closed, f"closed after {result.seconds:.1f} s"
            text = "Trickled in, then finished."
            sock.sendall(b"\r\n" + text_request(text)[len(HEAD) :])
            status, _, _ = read_response(sock)
    assert status == 201


SECRET = "slow-secret-7f3a"  # stands for a credential: never logged or echoed


def many_headers(count: int) -> bytes:
    """Header fields making `count` in all with Host, Content-Type and Content-Length."""
    return b"".join(f"X-Extra-{n}: {SECRET}\r\n".encode() for n in range(count - 3))


def long_target(size: int) -> bytes:
    target = f"/v1/documents?{SECRET}=".encode()
    return HEAD.replace(b"/v1/documents", target + b"a" * (size - len(target)))


def long_header(size: int) -> bytes:
    value = f"{SECRET} ".encode()
    return HEAD + b"X-Long: " + value + b"a" * (size - len(value)) + b"\r\n"


@pytest.mark.parametrize(
    ("head", "limit"),
    [
        pytest.param(
            long_header(MAX_LINE_BYTES + 1),
            {"limit_bytes": MAX_LINE_BYTES},
            id="header-value-over-the-limit",
        ),
        pytest.param(
            long_target(MAX_LINE_BYTES + 1),
            {"limit_bytes": MAX_LINE_BYTES},
            id="request-target-over-the-limit",
        ),
        pytest.param(
            HEAD + many_headers(MAX_HEADERS + 1),
            {"limit_headers": MAX_HEADERS},
            id="too-many-headers",
        ),
    ],
)
def test_a_head_over_the_size_limits_gets_400_and_stores_nothing(
    served: Served, head: bytes, limit: dict[str, int]
) -> None:
    before = stored_keys(served.s3)
    sock, _ = connect(served.server.port)
    with sock:
        sock.sendall(head + text_request("Never stored: the head is refused.")[len(HEAD) :])
        status, headers, body = read_response(sock)
        peer = peer_of(sock)
    assert status == 400
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "/problems/bad-request"
    assert problem.items() >= limit.items()
    assert problem["request_id"] == headers["x-request-id"]
    assert SECRET not in body.decode()
    assert stored_keys(served.s3) == before
    event = wait_for_event(served.server, "bad_request_head", peer)
    assert event["status"] == 400
    assert SECRET not in served.server.output()  # aiohttp's traceback would quote it


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(long_header(MAX_LINE_BYTES), id="header-value"),
        pytest.param(long_target(MAX_LINE_BYTES), id="request-target"),
        pytest.param(HEAD + many_headers(MAX_HEADERS), id="header-count"),
    ],
)
def test_a_head_exactly_at_the_size_limits_is_served(served: Served, head: bytes) -> None:
    text = f"At the limit {uuid.uuid4().hex}."
    sock, _ = connect(served.server.port)
    with sock:
        sock.sendall(head + text_request(text)[len(HEAD) :])
        status, _, _ = read_response(sock)
    assert status == 201


def test_a_header_timeout_is_logged_and_counted_without_the_head(served: Served) -> None:
    counted = header_timeouts(served.server)
    sock, started = connect(served.server.port)
    with sock:
        peer = peer_of(sock)
        result = trickle(
            sock, HEAD + f"Authorization: Bearer {SECRET}".encode(), started, limit=TRICKLE_FOR
        )
    assert result.closed
    event = wait_for_event(served.server, "header_timeout", peer)
    assert event["level"] == "warning"
    assert event["limit_seconds"] == DEADLINE
    assert SECRET not in served.server.output()
    assert header_timeouts(served.server) == counted + 1
