"""The HTTP connection: a deadline for each request's line and headers, and problems for
request heads aiohttp cannot parse.

aiohttp (3.14) has no timeout for receiving a request's head. Its keep-alive timer
(3630 s unless set) runs from the connection's start and from the end of each response, so
a client trickling one header byte every few seconds holds a connection for an hour.

`HeaderDeadlineHandler` gives each head `header_timeout` seconds (VELLUM_HEADER_TIMEOUT_SECONDS)
to arrive completely, counted

- for a connection's first request, from the moment the connection opens (so a client that
  connects and sends nothing is cut off too);
- for a keep-alive follow-up, from the first byte of the new request: an idle keep-alive
  connection stays governed by the keep-alive timeout (75 s, service/web/server.py), so
  a load balancer's pooled connections are not closed under it.

When the deadline passes the connection is closed without a response (as nginx's
client_header_timeout does: no request was read, so there is nothing to answer), one
`header_timeout` warning is logged with the peer's address (never header content), and
`on_header_timeout` is called (the server counts it in a Prometheus counter). If a
request is still being answered on the connection (a pipelined head trickling in behind
it), that response is finished first.

A head over the size limits (`MAX_LINE_BYTES` for the request target or a header,
`MAX_HEADERS` header fields) or malformed is answered by aiohttp with 400 before any
middleware runs; `handle_error` makes that answer a problem+json `bad-request` with a
request id, and replaces aiohttp's ERROR traceback (which quotes the offending bytes,
possibly a credential) with one `bad_request_head` line naming only the peer and the kind
of fault.

aiohttp has no public hook for its protocol class: `HeaderDeadlineRunner` overrides
`AppRunner._make_server` to serve the app through `HeaderDeadlineServer`, and the handler
reads `RequestHandler`'s private `_request_count`, `_messages` and `_waiter`, as aiohttp's
keep-alive timer does. These are held to the aiohttp version they were tested with,
`TESTED_AIOHTTP`, the one locked in requirements/: tests/test_protocol_internals.py fails
when the installed or locked aiohttp is another (then run tests/test_slow_clients.py on
the new one and move `TESTED_AIOHTTP`), or when one of the private names is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import StreamReader, web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from service.errors import BadRequest
from service.media import PROBLEM_JSON

log = structlog.get_logger("vellum")

# aiohttp's own defaults, stated here so the limits are Vellum's and visible: the longest
# request target (max_line_size) and header name or value (max_field_size) in bytes, and
# the most header fields in one request (max_headers). Beyond them: 400 bad-request.
MAX_LINE_BYTES = 8190
MAX_HEADERS = 128

# The aiohttp whose private internals (above) this module was tested against.
TESTED_AIOHTTP = "3.14.5"
PRIVATE_HANDLER_ATTRIBUTES = ("_request_count", "_messages", "_waiter")

_problem_encoder = msgspec.json.Encoder()


def _ignore() -> None:
    pass


class HeaderDeadlineHandler(web.RequestHandler):
    """aiohttp's connection handler with a deadline for each request's head."""

    __slots__ = (
        "_deadline",
        "_deadline_count",
        "_header_timeout",
        "_last_payload",
        "_on_timeout",
        "_timed_out",
    )

    def __init__(self, manager: HeaderDeadlineServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = manager.header_timeout
        self._on_timeout = manager.on_header_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_count = 0  # requests parsed when the deadline was set
        # The body of the last request parsed: bytes after its end begin the next head.
        self._last_payload: StreamReader | None = None
        self._timed_out = False  # the connection is closing: no further deadline

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        between_requests = self._last_payload is None or self._last_payload.is_eof()
        if self._deadline is None and data and between_requests and not self._timed_out:
            self._start_deadline()  # the first byte of a follow-up request
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a head arrived (or failed to parse)
            self._last_payload = self._messages[-1][1] if self._messages else None
            self._cancel_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._deadline_count = self._request_count
        self._deadline = self._loop.call_later(self._header_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport is None or self._request_count != self._deadline_count:
            return  # closed already, or the head arrived by a path data_received misses
        self._timed_out = True
        log.warning("header_timeout", peer=_peer(self.peername), limit_seconds=self._header_timeout)
        self._on_timeout()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self.force_close()  # waiting for this head: nothing else to finish
        else:
            self.close()  # closes once the request being answered is done

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):  # not a request head's fault
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):  # Vellum sets max_line_size = max_field_size
            error = BadRequest(
                f"the request target or a header is longer than {self.max_line_size} bytes",
                limit_bytes=self.max_line_size,
            )
        else:
            error = BadRequest(
                "the request line or headers are malformed, "
                f"or there are more than {self.max_headers} header fields",
                limit_headers=self.max_headers,
            )
        # Non-HTTP traffic (TLS to the plain port, scanners) is routine on a public port.
        emit = log.debug if isinstance(exc, BadHttpMethod) else log.info
        emit(
            "bad_request_head",
            peer=_peer(self.peername),
            fault=type(exc).__name__,
            status=error.status,
        )
        request_id = uuid.uuid4().hex
        response = web.Response(
            status=error.status,
            body=_problem_encoder.encode({**error.problem(), "request_id": request_id}),
            content_type=PROBLEM_JSON,
            headers={"X-Request-ID": request_id},
        )
        response.force_close()
        return response


class HeaderDeadlineServer(web.Server):
    """aiohttp's low-level server, making a `HeaderDeadlineHandler` per connection."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        header_timeout: float,
        on_header_timeout: Callable[[], None] = _ignore,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.header_timeout = header_timeout
        self.on_header_timeout = on_header_timeout

    def __call__(self) -> HeaderDeadlineHandler:
        return HeaderDeadlineHandler(self, loop=self._loop, **self._kwargs)


class HeaderDeadlineRunner(web.AppRunner):
    """`web.AppRunner` serving its application through a `HeaderDeadlineServer`."""

    __slots__ = ("_header_timeout", "_on_header_timeout")

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float,
        on_header_timeout: Callable[[], None] = _ignore,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout
        self._on_header_timeout = on_header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # starts the app; not serving yet
        return HeaderDeadlineServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            header_timeout=self._header_timeout,
            on_header_timeout=self._on_header_timeout,
            **server._kwargs,
        )


def _peer(peername: object) -> str | None:
    """`host:port` (`[host]:port` for IPv6) of a socket's peer, if it has one."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None
