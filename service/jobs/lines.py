"""Reading an NDJSON input from storage line by line, in bounded memory.

The input is read in windows of `WINDOW_BYTES` through range requests (pinned to the
input's ETag when the job knows it). A line longer
than the per-document limit is never held: it is skipped to its end and reported as
too long. Line numbers are 1-based; a final line without a newline counts, an empty
input has no lines, and a trailing CR (CRLF files) is not part of the line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec

from service.errors import IntegrityError
from service.storage.port import BulkStore

WINDOW_BYTES = 4 * 1024 * 1024


class Line(msgspec.Struct, frozen=True):
    number: int
    end: int  # byte offset just after the line and its newline
    data: bytes | None  # None: longer than the limit
    size: int


async def read_lines(
    store: BulkStore,
    key: str,
    *,
    start: int,
    first_line: int,
    limit: int,
    size: int,
    if_match: str | None = None,
    on_window: Callable[[bytes], None] | None = None,
) -> AsyncIterator[Line]:
    """The lines of the `size` bytes of `key` from byte `start` (line `first_line`),
    read pinned to the ETag `if_match` when given; `on_window` sees every byte read, in
    order, once (the job's end checks the input's digest with it)."""
    offset = start  # where `pending` begins in the input
    pending = bytearray()
    skipping = False  # inside a line that is over the limit
    skipped = 0
    number = first_line
    read_to = start
    while True:
        newline = pending.find(b"\n")
        if newline < 0:
            if read_to >= size:
                if pending or skipping:
                    yield _line(number, size, pending, skipping, skipped + len(pending))
                return
            asked = min(read_to + WINDOW_BYTES, size)
            window = await store.get_range(key, read_to, asked, if_match=if_match)
            if len(window) != asked - read_to:
                raise IntegrityError(
                    f"{key} changed while it was read: bytes {read_to}-{asked - 1} gave "
                    f"{len(window)} bytes",
                    key=key,
                )
            read_to += len(window)
            if on_window is not None:
                on_window(window)
            if skipping:
                cut = window.find(b"\n")
                if cut < 0:
                    skipped += len(window)
                    offset += len(window)
                    continue
                skipped += cut
                offset += cut
                window = window[cut:]
            pending += window
            if not skipping and len(pending) > limit + 2 and pending.find(b"\n") < 0:
                skipping, skipped = True, len(pending)
                offset += len(pending)
                pending.clear()
            continue
        end = offset + newline + 1
        line = bytes(pending[:newline])
        yield _line(number, end, line, skipping, skipped + len(line))
        del pending[: newline + 1]
        offset = end
        number += 1
        skipping, skipped = False, 0


class LineCounter:
    """Counts the lines of a stream as `read_lines` numbers them: its newlines, plus a
    last line without one."""

    def __init__(self) -> None:
        self.newlines = 0
        self.open_line = False

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self.newlines += chunk.count(b"\n")
            self.open_line = not chunk.endswith(b"\n")

    @property
    def count(self) -> int:
        return self.newlines + (1 if self.open_line else 0)


def _line(number: int, end: int, data: bytes | bytearray, skipping: bool, size: int) -> Line:
    if skipping:
        return Line(number=number, end=end, data=None, size=size)
    content = bytes(data).removesuffix(b"\r")
    return Line(number=number, end=end, data=content, size=size)
