"""Working through a stream of items a few at a time, without a task per item.

`each(items, work, concurrency)` runs `concurrency` takers; each takes the next item
(from a list, or from an async stream such as a paged listing, read as it is needed) and
works on it before taking another. A run over millions of documents holds `concurrency`
of them, never a task or a listing entry for each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def each(
    items: Iterable[T] | AsyncIterable[T], work: Callable[[T], Awaitable[None]], concurrency: int
) -> None:
    pending = aiter(items) if isinstance(items, AsyncIterable) else _stream(items)
    taking = asyncio.Lock()  # an async generator serves one `anext` at a time

    async def taker() -> None:
        while True:
            async with taking:
                try:
                    item = await anext(pending)
                except StopAsyncIteration:
                    return
            await work(item)

    await asyncio.gather(*(taker() for _ in range(concurrency)))


async def _stream(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item
