"""Reading a request body within its limit: cut off at the limit, never buffered past it."""

from __future__ import annotations

from aiohttp import web

from service.errors import PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than the limit of {limit} bytes", limit_bytes=limit)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body if it is at most `limit` bytes, else PayloadTooLarge.

    A declared Content-Length over the limit is refused before reading anything; a
    chunked body is read until it passes the limit and no further.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
