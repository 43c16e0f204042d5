"""`vellum serve --workers N`: N server processes accepting from one listening socket.

One Python process runs Python code on one core at a time, so a single server tops out
at about one core however many requests wait. With `--workers N` this process becomes
a supervisor, as in gunicorn's pre-fork model:

1. it binds the listening socket itself (so port 0 and privileged ports work) and, when
   storage is embedded, starts the embedded S3 server and supervises it;
2. it starts N workers, each a `vellum serve` process that inherits the socket's file
   descriptor and serves it with its own event loop, S3 client and analysis processes;
   the kernel hands each new connection to one of the workers waiting in accept();
3. it announces the address once every worker has written to its ready pipe;
4. a worker that exits while serving is started again, after a delay that doubles
   (1 s up to 30 s) while workers keep dying within `STABLE_SECONDS` of their start;
5. on SIGTERM or SIGINT it sends SIGTERM to every worker, which drains as a single
   server does (VELLUM_DRAIN_SECONDS, VELLUM_SHUTDOWN_TIMEOUT_SECONDS); a worker still
   running well past that is killed; then the embedded S3 server stops.

Workers get the supervisor's environment with the S3 endpoint and keys of the embedded
server, if any, so they all use the same storage, and a directory of the supervisor's
where they share their metrics (service.metrics), cleared of a dead worker's gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable

import structlog
from prometheus_client.multiprocess import mark_process_dead

from service.bootstrap import open_storage, s3_description
from service.config import PROMETHEUS_MULTIPROC_DIR, Config, child_environment
from service.errors import ConfigError

log = structlog.get_logger("vellum")

STABLE_SECONDS = 10.0  # a worker that lived this long had a good start
FIRST_RESTART_DELAY = 1.0
LONGEST_RESTART_DELAY = 30.0
READY_TIMEOUT_SECONDS = 120.0  # a worker's start includes loading the language model
KILL_GRACE_SECONDS = 5.0  # past drain + shutdown timeout, before SIGKILL


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts from: inheritable, non-blocking, listening."""
    sock = socket.create_server((host, port), family=_family(host), backlog=1024)
    sock.set_inheritable(True)
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def run_workers(config: Config, *, on_ready: Callable[[str, str], None]) -> int:
    """Serve with `config.workers` processes until SIGTERM/SIGINT; 0 on a clean stop.

    `on_ready(url, storage_description)` is called once every worker is ready.
    """
    sock = listening_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with (
            _storage_for_workers(config) as (environment, description),
            _shared_metrics_dir() as metrics_dir,
        ):
            environment[PROMETHEUS_MULTIPROC_DIR] = metrics_dir
            pool = WorkerPool(config, sock, environment)
            try:
                await pool.start()
                on_ready(url, description)
                await stop.wait()
            finally:
                await pool.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        sock.close()
    log.info("stopped")
    return 0


@contextlib.asynccontextmanager
async def _storage_for_workers(config: Config) -> AsyncIterator[tuple[dict[str, str], str]]:
    """The environment that points workers at the storage, and its description."""
    if not config.embedded_storage:
        yield {}, s3_description(config)
        return
    async with open_storage(config) as (store, description):
        settings = store.settings
        assert settings.access_key_id is not None
        assert settings.secret_access_key is not None
        yield (
            {
                "VELLUM_S3_ENDPOINT": settings.endpoint,
                "AWS_ACCESS_KEY_ID": settings.access_key_id,
                "AWS_SECRET_ACCESS_KEY": settings.secret_access_key,
            },
            description,
        )


async def _read_byte(fd: int) -> bytes:
    """One byte from a pipe, waiting on the event loop rather than in a thread."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    return os.read(fd, 1)


@contextlib.asynccontextmanager
async def _shared_metrics_dir() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="vellum-metrics-") as path:
        yield path


class WorkerPool:
    def __init__(self, config: Config, sock: socket.socket, environment: dict[str, str]) -> None:
        """`environment`: what workers need beyond this process's environment."""
        self.config = config
        self.sock = sock
        self.environment = child_environment({**environment, "VELLUM_WORKERS": "1"})
        self.metrics_dir = environment[PROMETHEUS_MULTIPROC_DIR]
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Start every worker and wait until each is ready (ConfigError if one is not)."""
        started = await asyncio.gather(
            *(self._start(index) for index in range(self.config.workers)),
            return_exceptions=True,
        )
        failures = [result for result in started if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
        self._keepers = [
            asyncio.create_task(self._keep(index)) for index in range(self.config.workers)
        ]

    async def _start(self, index: int) -> None:
        read_end, write_end = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--listen-fd",
                str(self.sock.fileno()),
                "--ready-fd",
                str(write_end),
                pass_fds=(self.sock.fileno(), write_end),
                env=self.environment,
            )
        finally:
            os.close(write_end)
        self.processes[index] = process
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                ready = await _read_byte(read_end)  # b"" if the worker exited
        except TimeoutError:
            ready = b""
        finally:
            os.close(read_end)
        if not ready:
            if process.returncode is None:
                process.kill()
            raise ConfigError(f"worker {index} (pid {process.pid}) did not start; its log says why")
        log.info("worker_ready", worker=index, pid=process.pid)

    async def _keep(self, index: int) -> None:
        """Start worker `index` again whenever it exits, until the pool stops."""
        delay = FIRST_RESTART_DELAY
        while True:
            process = self.processes[index]
            started = asyncio.get_running_loop().time()
            status = await process.wait()
            if self._stopping:
                return
            # Its live gauges (requests in flight) stop counting; its counters stay.
            mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            lived = asyncio.get_running_loop().time() - started
            delay = FIRST_RESTART_DELAY if lived >= STABLE_SECONDS else delay
            log.error("worker_exited", worker=index, pid=process.pid, status=status)
            await asyncio.sleep(delay)
            delay = min(delay * 2, LONGEST_RESTART_DELAY)
            with contextlib.suppress(ConfigError):  # the next turn logs it and tries again
                await self._start(index)

    async def stop(self) -> None:
        self._stopping = True
        # First the keepers, so that no worker starts after the SIGTERMs (one cancelled
        # while starting has its process killed by asyncio, or is in `processes` already).
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        patience = (
            self.config.drain_seconds + self.config.shutdown_timeout_seconds + KILL_GRACE_SECONDS
        )
        for index, process in self.processes.items():
            try:
                async with asyncio.timeout(patience):
                    status = await process.wait()
            except TimeoutError:
                log.warning("worker_killed", worker=index, pid=process.pid)
                process.kill()
                status = await process.wait()
            log.info("worker_stopped", worker=index, pid=process.pid, status=status)
