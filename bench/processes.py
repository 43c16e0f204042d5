"""The servers under test, each a child process stopped by its pid on the way out.

`seaweedfs()` is Vellum's own `EmbeddedS3` (free loopback ports, a private data dir);
`vellum()` is `python -m service.cli serve` pointed at it, with an environment of its
own: no inherited `AWS_*` or `VELLUM_*` variable reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec

from bench.measure import BenchError
from bench.settings import REPO
from service.storage.embedded import EmbeddedS3, free_ports
from service.storage.s3 import S3Settings

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


class Server(msgspec.Struct, frozen=True):
    url: str
    pid: int


@contextlib.contextmanager
def seaweedfs(workdir: Path, bucket: str) -> Iterator[tuple[S3Settings, int]]:
    """A ready SeaweedFS S3 server: its settings (endpoint, keys) and its pid."""
    server = EmbeddedS3(workdir / "seaweedfs", bucket=bucket)
    try:
        settings = server.start()
        asyncio.run(server.wait_ready())
        assert server.process is not None
        yield settings, server.process.pid
    finally:
        server.stop()


IMPORT_CONCURRENCY = 16


@contextlib.contextmanager
def vellum(s3: S3Settings, prefix: str, workdir: Path, workers: int = 1) -> Iterator[Server]:
    """`vellum serve --workers N` on a free loopback port, storing under `prefix`; every
    worker ready when entered."""
    assert s3.access_key_id is not None
    assert s3.secret_access_key is not None
    port = free_ports(1)[0]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VELLUM_"))},
        "VELLUM_HOST": "127.0.0.1",
        "VELLUM_PORT": str(port),
        "VELLUM_S3_ENDPOINT": s3.endpoint,
        "VELLUM_S3_BUCKET": s3.bucket,
        "VELLUM_S3_PREFIX": prefix,
        "VELLUM_LOG_FORMAT": "json",
        "VELLUM_LOG_LEVEL": "warning",  # no per-request lines: they would cost CPU
        "VELLUM_IMPORT_CONCURRENCY": str(IMPORT_CONCURRENCY),  # as the C=16 ceiling
        "AWS_ACCESS_KEY_ID": s3.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
    }
    log = workdir / f"vellum-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--workers", str(workers)],
            cwd=REPO,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches the bench, which stops it
        )
    server = Server(url=f"http://127.0.0.1:{port}", pid=process.pid)
    try:
        _wait_ready(server.url, process, log if workers > 1 else None)
        yield server
    except Exception:
        _stop(process)  # its log, in a temp dir about to go, may say why
        print(f"bench: vellum serve's log ends with:\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        _stop(process)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path | None) -> None:
    """Until /healthz answers and, with workers, the log says all of them are ready."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _healthy(url) or (log is not None and b"worker processes" not in log.read_bytes()):
        if process.poll() is not None:
            raise BenchError(f"vellum serve exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise BenchError("vellum serve did not answer /healthz in time")
        time.sleep(0.1)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _tail(log: Path, lines: int = 8) -> str:
    return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
