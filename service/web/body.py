"""Reading a request body within its limit: cut off at the limit, never buffered past it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from service.errors import PayloadTooLarge, RequestTimeout
from service.web.pace import RateFloor
from service.web.typedefs import BODY_BYTES, LIFECYCLE


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", limit_bytes=limit)


async def read_body(request: web.Request, limit: int, *, seconds: float, budget: int) -> bytes:
    """The whole body if it is at most `limit` bytes, else PayloadTooLarge.

    A declared Content-Length over the limit is refused before reading anything; a
    chunked body is read until it passes the limit and no further. A body that takes
    longer than `seconds` to arrive is refused (408): a slow client cannot hold
    a request open for ever. The body's bytes count against the server's `budget` of
    body bytes in flight until the request ends (503 overloaded beyond it): a declared
    length at once, a chunked body as it arrives.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    if request.content_length is not None:
        _hold(request, request.content_length, budget)
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if request.content_length is None:
                    _hold(request, len(chunk), budget)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the body did not arrive within {seconds:g} seconds", limit_seconds=seconds
        ) from None
    return b"".join(chunks)


def _hold(request: web.Request, size: int, budget: int) -> None:
    """Count `size` body bytes as held by `request` (given back by the request_context
    middleware when it ends)."""
    request.app[LIFECYCLE].charge_body(size, budget)
    request[BODY_BYTES] = request.get(BODY_BYTES, 0) + size


async def stream_body(
    request: web.Request, *, idle_seconds: float, floor: RateFloor, max_seconds: float
) -> AsyncIterator[bytes]:
    """The body in chunks, for inputs too large to hold. 408 when no byte arrives for
    `idle_seconds`, when the body falls below its rate `floor`, or when it has not
    ended within `max_seconds`: a large upload may take long, but must keep moving."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + max_seconds
    chunks = request.content.iter_chunked(1 << 20)
    while True:
        idle_ends = loop.time() + idle_seconds
        too_slow = floor.deadline()
        try:
            async with asyncio.timeout_at(min(idle_ends, too_slow, ends)):
                chunk = await anext(chunks, None)
        except TimeoutError:
            raise _cut_off(idle_ends, too_slow, ends, floor, idle_seconds, max_seconds) from None
        if chunk is None:
            return
        floor.received(len(chunk), now=loop.time())
        yield chunk


def _cut_off(
    idle_ends: float,
    too_slow: float,
    ends: float,
    floor: RateFloor,
    idle_seconds: float,
    max_seconds: float,
) -> RequestTimeout:
    """The 408 of whichever limit came first."""
    first = min(idle_ends, too_slow, ends)
    if first == ends:
        return RequestTimeout(
            f"the body did not arrive within {max_seconds:g} seconds", limit_seconds=max_seconds
        )
    if first == too_slow:
        return RequestTimeout(
            f"the body arrived at less than {floor.bytes_per_second:g} bytes per second "
            f"over {floor.window_seconds:g} seconds",
            limit_bytes_per_second=floor.bytes_per_second,
            window_seconds=floor.window_seconds,
        )
    return RequestTimeout(
        f"no data arrived for {idle_seconds:g} seconds", limit_seconds=idle_seconds
    )
