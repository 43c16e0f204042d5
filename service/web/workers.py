"""`vellum serve --workers N`: N worker processes on one port, run by gunicorn.

One Python process runs Python code on one core at a time, so a single server tops out
at about one core however many requests wait. With `--workers N` this process

1. binds the listening socket itself (so port 0 and privileged ports work) and, when
   storage is embedded, starts the embedded S3 server, once, and supervises it;
2. starts gunicorn's arbiter (service.arbiter) on that socket, which forks the N
   workers, replaces one that dies and stops them all gracefully on SIGTERM; its
   environment names the embedded server's endpoint and keys, so every worker uses the
   same storage, and a metrics directory of this process's (PROMETHEUS_MULTIPROC_DIR,
   set before the arbiter starts, as prometheus_client's gunicorn recipe asks);
3. announces the address once the workers answer;
4. on SIGTERM or SIGINT sends SIGTERM to the arbiter, whose workers drain as a single
   server does (VELLUM_DRAIN_SECONDS, VELLUM_SHUTDOWN_TIMEOUT_SECONDS); an arbiter still
   running well past that is killed; then the embedded S3 server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog

from service.bootstrap import open_storage, s3_description
from service.config import PROMETHEUS_MULTIPROC_DIR, Config, child_environment
from service.errors import ConfigError

log = structlog.get_logger("vellum")

READY_TIMEOUT_SECONDS = 120.0  # a worker's start includes loading the language model
KILL_GRACE_SECONDS = 10.0  # past drain + shutdown timeout (and gunicorn's own grace)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts from: inheritable, listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock


async def run_workers(config: Config, *, on_ready: Callable[[str, str], None]) -> int:
    """Serve with `config.workers` processes until SIGTERM/SIGINT; 0 on a clean stop.

    `on_ready(url, storage_description)` is called once the workers answer.
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
            environment["VELLUM_WORKERS"] = str(config.workers)
            arbiter = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.arbiter",
                "--listen-fd",
                str(sock.fileno()),
                pass_fds=(sock.fileno(),),
                env=child_environment(environment),
            )
            try:
                await _until_answering(url, arbiter)
                on_ready(url, description)
                ended = asyncio.create_task(arbiter.wait())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if ended.done():
                    raise ConfigError(f"gunicorn exited with status {ended.result()}")
            finally:
                await _stop(arbiter, config)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        sock.close()
    log.info("stopped")
    return 0


async def _until_answering(url: str, arbiter: asyncio.subprocess.Process) -> None:
    """Until a worker answers /healthz; ConfigError if the arbiter exits first."""
    # Each probe is short: the socket is listening before any worker accepts from it.
    probe = aiohttp.ClientTimeout(total=1.0)
    async with (
        aiohttp.ClientSession(timeout=probe) as session,
        asyncio.timeout(READY_TIMEOUT_SECONDS),
    ):
        while arbiter.returncode is None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise ConfigError("the workers did not start; their log says why")


async def _stop(arbiter: asyncio.subprocess.Process, config: Config) -> None:
    if arbiter.returncode is None:
        arbiter.send_signal(signal.SIGTERM)
    patience = config.drain_seconds + config.shutdown_timeout_seconds + KILL_GRACE_SECONDS
    try:
        async with asyncio.timeout(patience):
            status = await arbiter.wait()
    except TimeoutError:
        log.warning("gunicorn_killed", pid=arbiter.pid)
        arbiter.kill()
        status = await arbiter.wait()
    log.info("gunicorn_stopped", pid=arbiter.pid, status=status)


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


@contextlib.asynccontextmanager
async def _shared_metrics_dir() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="vellum-metrics-") as path:
        yield path
