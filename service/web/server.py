"""Serving an application with graceful shutdown.

On SIGTERM or SIGINT: /readyz answers 503 at once (draining); after `drain_seconds`
(time for a load balancer to stop routing here) the listening socket closes, in-flight
requests get up to `shutdown_timeout_seconds` to finish, then the application's
resources are released in reverse order of start (the embedded S3 server last).

aiohttp's own shutdown stops reading from connections at once, which would strand a
request whose body is still arriving (aiohttp issue 2298), so Vellum waits for its
in-flight requests itself before handing over to `runner.cleanup()`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

import structlog
from aiohttp import web

from service.config import Config
from service.web.protocol import MAX_HEADERS, MAX_LINE_BYTES, HeaderDeadlineRunner
from service.web.typedefs import LIFECYCLE, METRICS

log = structlog.get_logger("vellum")

# After a 413 the rest of an oversized upload is read and discarded for at most this
# long (so the client can see the answer), then the connection is closed.
LINGERING_SECONDS = 2.0
# An idle keep-alive connection is closed after this long (aiohttp's default is an hour):
# above the 60 s idle timeout of common load balancers, so they close first.
KEEPALIVE_SECONDS = 75.0


async def serve(
    app: web.Application,
    config: Config,
    *,
    on_ready: Callable[[str], None],
    sock: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT on config's host and port, or on an inherited listening
    socket (a gunicorn worker of `vellum serve --workers N`, see service.arbiter)."""
    runner = HeaderDeadlineRunner(
        app,
        header_timeout=config.header_timeout_seconds,  # slow request heads: see protocol.py
        on_header_timeout=app[METRICS].header_timeouts.inc,
        handle_signals=False,
        access_log=None,  # one structured line per request comes from the middleware
        shutdown_timeout=config.shutdown_timeout_seconds,
        lingering_time=LINGERING_SECONDS,
        keepalive_timeout=KEEPALIVE_SECONDS,
        max_line_size=MAX_LINE_BYTES,  # beyond any of these three: 400 bad-request
        max_field_size=MAX_LINE_BYTES,
        max_headers=MAX_HEADERS,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()  # starts the storage: may take a few seconds
        site: web.BaseSite = (
            web.TCPSite(runner, config.host, config.port)
            if sock is None
            else web.SockSite(runner, sock)
        )
        await site.start()
        on_ready(site.name)
        await stop.wait()
        lifecycle = app[LIFECYCLE]
        lifecycle.draining = True
        log.info("draining", drain_seconds=config.drain_seconds)
        await asyncio.sleep(config.drain_seconds)
        await site.stop()  # no new connections; open ones carry on
        try:
            async with asyncio.timeout(config.shutdown_timeout_seconds):
                await lifecycle.wait_idle()
        except TimeoutError:
            log.warning("shutdown_timeout", in_flight=lifecycle.in_flight)
    finally:
        # The handlers stay until the resources are released: a second SIGTERM or Ctrl-C
        # meanwhile (make passes its own SIGTERM on to its child) must not kill the
        # process before it has stopped the embedded S3 server.
        try:
            await runner.cleanup()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        log.info("stopped")
