"""`vellum serve --workers 2`: two processes serve one port, a dead one is replaced, all stop.

The workers are gunicorn's: children of its arbiter, which is a child of `vellum serve`.

Which worker takes a connection is the kernel's choice, so each worker is proven to serve
by stopping the other (SIGSTOP): a stopped process cannot accept, so every new connection
goes to the one left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.servers import ServerProcess, running_server

PATIENCE_SECONDS = 60.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def arbiter(server: ServerProcess) -> int:
    (pid,) = [pid for pid in children(server.process.pid) if "service.arbiter" in command_line(pid)]
    return pid


def workers(server: ServerProcess) -> list[int]:
    return children(arbiter(server))


def ingest(server: ServerProcess, text: str) -> str:
    request = urllib.request.Request(
        f"{server.url}/v1/documents",
        data=text.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        document_id: str = json.load(response)["id"]
    return document_id


def fetch_text(server: ServerProcess, document_id: str) -> str:
    with urllib.request.urlopen(f"{server.url}/v1/documents/{document_id}", timeout=30) as answer:
        text: str = json.load(answer)["text"]
    return text


def metrics(server: ServerProcess) -> str:
    request = urllib.request.Request(f"{server.url}/metrics", headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text: str = response.read().decode()
    return text


def wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextlib.contextmanager
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    """The server once every worker is ready (one may answer /healthz before the other)."""
    environment = {"VELLUM_DATA_DIR": str(tmp_path / "data")}
    with running_server(tmp_path, environment, "--workers", "2") as server:
        wait_for(lambda: "with 2 worker processes" in server.output(), "both workers")
        yield server


def test_two_workers_share_the_port_and_each_serves(tmp_path: Path) -> None:
    with two_workers(tmp_path) as server:
        first, second = pids = workers(server)
        assert len(set(pids)) == 2
        written = {}
        for stopped in (second, first):
            os.kill(stopped, signal.SIGSTOP)
            try:
                for n in range(5):
                    text = f"Served while worker {stopped} is stopped, number {n}."
                    written[ingest(server, text)] = text
            finally:
                os.kill(stopped, signal.SIGCONT)
        assert len(written) == 10
        for document_id, text in written.items():
            assert fetch_text(server, document_id) == text
        # Each worker created 5; whichever answers /metrics counts all 10.
        for _ in range(4):
            assert 'vellum_documents_total{channel="http",outcome="created"} 10.0' in metrics(
                server
            )
        assert "with 2 worker processes" in server.output()


def test_a_killed_worker_is_replaced_and_all_stop_on_sigterm(tmp_path: Path) -> None:
    with two_workers(tmp_path) as server:
        killed, survivor = workers(server)
        os.kill(killed, signal.SIGKILL)
        document_id = ingest(server, "Answered while one worker is dead.")
        wait_for(
            lambda: len(workers(server)) == 2 and killed not in workers(server), "a new worker"
        )
        assert survivor in workers(server)
        assert "worker_exited" in server.output()
        # The arbiter and the embedded S3 server, and the arbiter's two workers.
        everyone = children(server.process.pid) + workers(server)
        assert len(everyone) == 4
        server.terminate()
        assert server.wait() == 0
        assert not [pid for pid in everyone if command_line(pid)]
        assert server.output().count('"event":"worker_stopped"') == 2
    with running_server(tmp_path, {"VELLUM_DATA_DIR": str(tmp_path / "data")}) as again:
        assert fetch_text(again, document_id) == "Answered while one worker is dead."
