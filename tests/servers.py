"""Running `vellum serve` as a real child process for end-to-end tests; waiting for an
embedded S3 server to be ready."""

from __future__ import annotations

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

from service.storage.embedded import free_ports
from service.storage.s3 import S3Settings


class ServerProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def terminate(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def s3_environment(settings: S3Settings) -> dict[str, str]:
    """Environment that points `vellum serve` at an existing S3 server."""
    assert settings.access_key_id is not None
    assert settings.secret_access_key is not None
    return {
        "VELLUM_S3_ENDPOINT": settings.endpoint,
        "VELLUM_S3_BUCKET": settings.bucket,
        "VELLUM_S3_PREFIX": settings.prefix,
        "AWS_ACCESS_KEY_ID": settings.access_key_id,
        "AWS_SECRET_ACCESS_KEY": settings.secret_access_key,
    }


def clean_environment() -> dict[str, str]:
    """This process's environment without AWS_* and VELLUM_*: children get only what a
    test gives them."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VELLUM_"))}


def run_vellum(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`vellum ARGS...` as a user runs it, in a clean environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**clean_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def running_server(tmp_path: Path, env: dict[str, str], *args: str) -> Iterator[ServerProcess]:
    """`vellum serve` on a free port, ready (healthz answers) when entered."""
    port = free_ports(1)[0]
    log = tmp_path / f"vellum-{port}.log"
    environment = {
        **clean_environment(),
        "VELLUM_PORT": str(port),
        "VELLUM_LOG_FORMAT": "json",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", *args],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    server = ServerProcess(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(server.url):
            if process.poll() is not None:
                raise AssertionError(f"vellum serve exited:\n{server.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"vellum serve did not start:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
