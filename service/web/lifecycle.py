"""A server's serving state: draining after SIGTERM, and the requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from service.errors import Overloaded


@dataclass
class Lifecycle:
    """Serving state: draining after SIGTERM (/readyz turns 503), the requests in flight
    (which shutdown waits for), and what they hold: import uploads and body bytes."""

    draining: bool = False
    in_flight: int = 0
    import_uploads: int = 0  # HTTP import bodies arriving
    body_bytes: int = 0  # bytes of document bodies held by requests in flight
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def request_started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is in flight."""
        await self._idle.wait()

    @contextlib.contextmanager
    def import_upload(self, limit: int) -> Iterator[None]:
        """Hold one of `limit` slots for an import body while it arrives; 503 overloaded
        (with Retry-After) when all are taken, before a byte is read."""
        if self.import_uploads >= limit:
            raise Overloaded(
                f"{limit} imports are uploading already; retry later", limit_uploads=limit
            )
        self.import_uploads += 1
        try:
            yield
        finally:
            self.import_uploads -= 1

    def charge_body(self, size: int, limit: int) -> None:
        """Count `size` more body bytes held (`release_body` gives them back when the
        request ends); 503 overloaded, counting nothing, if that would pass `limit`."""
        if self.body_bytes + size > limit:
            raise Overloaded(
                f"more than {limit} bytes of request bodies are in flight; retry shortly",
                limit_body_bytes=limit,
            )
        self.body_bytes += size

    def release_body(self, size: int) -> None:
        self.body_bytes -= size
