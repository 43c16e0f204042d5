"""The worker processes of `vellum serve --workers N`, run by gunicorn.

gunicorn's arbiter (this module, `python -m service.arbiter`) forks `N` workers that
serve one listening socket, which the `vellum serve` process above it bound and handed
down as `fd://<n>` (service.web.workers); it replaces a worker that dies and, on SIGTERM,
stops them gracefully. Each worker is aiohttp's `GunicornWebWorker` (the aiohttp docs'
recipe) with its serving loop replaced by Vellum's own (service.web.server), so every
worker keeps what a single server does: the request-head deadline (protocol.py), the
drain on SIGTERM and the wait for requests in flight. Metrics follow prometheus_client's
multiprocess recipe for gunicorn: PROMETHEUS_MULTIPROC_DIR is set before this process
starts, and `child_exit` marks a dead worker's live gauges dead.

The application is made in each worker after the fork (never in the arbiter): its S3
connection pool and analysis processes are the worker's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
from typing import Any

import structlog
from aiohttp.worker import GunicornWebWorker
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker
from prometheus_client.multiprocess import mark_process_dead

from service.app import create_app
from service.config import Config, shared_metrics_dir
from service.logging import configure_logging
from service.web.server import serve
from service.web.typedefs import CONFIG

log = structlog.get_logger("vellum")

# gunicorn kills a worker silent for this long (its heartbeat is every half of it); a
# worker's start includes loading the language model.
HEARTBEAT_TIMEOUT_SECONDS = 120
KILL_GRACE_SECONDS = 5.0  # past drain + shutdown timeout, before gunicorn's SIGKILL


class VellumWorker(GunicornWebWorker):
    """aiohttp's gunicorn worker, serving through `service.web.server.serve`."""

    async def _run(self) -> None:
        app = self.wsgi
        config = app[CONFIG]
        heartbeat = asyncio.create_task(self._heartbeat())

        def ready(url: str) -> None:
            self.booted = True  # gunicorn: booted, not a boot error
            log.info("worker_ready", url=url, pid=os.getpid())

        (listening,) = self.sockets
        try:
            await serve(app, config, on_ready=ready, sock=listening.sock)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self) -> None:
        """Tell the arbiter this worker lives, while it starts, serves and drains."""
        while True:
            self.notify()
            await asyncio.sleep(self.timeout / 2)


def _child_exit(server: Arbiter, worker: Worker) -> None:
    """In the arbiter, for every worker that ended (stopped, or died): its live gauges
    stop counting (prometheus_client's gunicorn hook)."""
    log.info("worker_exited", pid=worker.pid)
    directory = shared_metrics_dir()
    if directory is not None:
        mark_process_dead(worker.pid, str(directory))  # type: ignore[no-untyped-call]


def _worker_exit(server: Arbiter, worker: Worker) -> None:
    """In a worker that ends of its own accord (a SIGKILLed one cannot)."""
    log.info("worker_stopped", pid=worker.pid)
    sys.stdout.flush()  # gunicorn ends the worker without flushing its log


class GunicornApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn run from Python: its settings from Vellum's Config, no config file."""

    def __init__(self, config: Config, listen_fd: int) -> None:
        self.config = config
        self.listen_fd = listen_fd
        super().__init__()

    def load_config(self) -> None:
        settings: dict[str, Any] = {
            "bind": [f"fd://{self.listen_fd}"],
            "workers": self.config.workers,
            "worker_class": "service.arbiter.VellumWorker",
            "control_socket_disable": True,  # no `gunicornc` socket in $HOME
            "timeout": HEARTBEAT_TIMEOUT_SECONDS,
            "graceful_timeout": math.ceil(
                self.config.drain_seconds
                + self.config.shutdown_timeout_seconds
                + KILL_GRACE_SECONDS
            ),
            "keepalive": 75,  # unused: Vellum's server sets its own (service.web.server)
            "accesslog": None,  # one structured line per request comes from the middleware
            "loglevel": self.config.log_level,
            "child_exit": _child_exit,
            "worker_exit": _worker_exit,
            "proc_name": "vellum",
        }
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        """In each worker, after the fork: the application."""
        return create_app(self.config)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m service.arbiter")
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args()
    config = Config.from_env()
    configure_logging(config.log_format, config.log_level)
    GunicornApplication(config, args.listen_fd).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
