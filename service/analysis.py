"""Running the normalizer beside the server: in child processes, or in this one.

The normalizer is pure CPU, about 1 ms per 5 KB article, and a Python process runs
Python code one thread at a time: on the event loop it would take turns with HTTP
handling and the S3 transport for the same core. With `processes` >= 1 every analysis
runs in one of that many child processes, each joined to the server by its own socket
pair: the server writes the text (msgpack) on the event loop and reads the packed
analysis back as the child sends it, with no thread of its own in between (a
`ProcessPoolExecutor` spent about as much of the server's CPU on its feeder and manager
threads and their wake-up pipes as the normalizer spent in the child: docs/performance.md).
With 0 it runs in this process: inline for short texts, in a thread for long ones so the
event loop keeps serving.

The children (their side: service.analysis_child) come from a forkserver that has
imported the normalizer, so starting or replacing one takes milliseconds and no thread
of this process is ever forked. A child
loads the language model before it says it is ready, and `start()` waits for every
child, so the server reports ready with warm children. Children exit with the server,
also when it is killed with SIGKILL. A child that dies (killed, out of memory) is
replaced and the analysis tried once more on another, so only a text that kills the
analyser twice in a row fails (500 analysis-failed); an exception in the normalizer
fails the request the same way, and the child serves on.

Every analysis has a deadline, `timeout_seconds` per MiB of text (2**20 characters) and
at least `timeout_seconds`: no input, however hostile, holds a child longer. An analysis
waits in this process for an idle child, so its clock starts when a child takes it, not
while it queues. Past the deadline that child alone is killed (SIGKILL) and replaced; the
request fails with 503 analysis-timeout and the other children go on. A request that
gives up (cancelled) leaves its child to finish the answer, which is read and dropped, so
the child returns to the pool in step. Without processes a thread cannot be killed: the
request still fails at the deadline, and the thread runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
from collections.abc import Awaitable
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec
import structlog

from service.analysis_child import (
    FAILED,
    LENGTH_BYTES,
    READY,
    TEXT,
    analyze_packed,
    frame,
    serve,
)
from service.errors import AnalysisFailed, AnalysisTimeout
from service.normalize import Analysis, analyze

log = structlog.get_logger("vellum")

# In-process mode: texts longer than this are analysed in a thread, so the event loop
# keeps its turns (the normalizer takes about 1 ms per 5 KB of ordinary text, and a
# thread hop about 0.1 ms; a hostile text of 1 KiB stays in milliseconds).
INLINE_ANALYSIS_CHARS = 1024
DEFAULT_TIMEOUT_SECONDS = 5.0
# On close, children still analysing get this long before SIGKILL. By then the requests
# waiting for them have had the server's shutdown timeout: nobody waits for the answer.
CLOSE_GRACE_SECONDS = 5.0
# A new child starts and loads the language model within this, or is killed.
START_TIMEOUT_SECONDS = 60.0
RESTART_DELAY_SECONDS = 1.0  # between attempts to start a replacement that failed
MIB = 1024 * 1024

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Analysis)

# What each child runs on a text; tests put a misbehaving one here before starting.
_analyze_packed = analyze_packed


class _ChildDied(Exception):
    """The child's socket closed before its answer was whole."""


class _Child:
    """One analysis process and the server's end of its socket pair."""

    def __init__(
        self, process: BaseProcess, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def receive(self) -> tuple[bytes, bytes]:
        """The next frame from the child: its kind and payload."""
        try:
            length = await self.reader.readexactly(LENGTH_BYTES)
            body = await self.reader.readexactly(int.from_bytes(length, "big"))
        except (asyncio.IncompleteReadError, ConnectionError) as lost:
            raise _ChildDied from lost
        return body[:1], body[1:]

    async def ask(self, request: bytes) -> tuple[bytes, bytes]:
        try:
            self.writer.writelines(frame(TEXT, request))
            await self.writer.drain()
        except ConnectionError as lost:
            raise _ChildDied from lost
        return await self.receive()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.writer.close()


class Analyzer:
    """`await analyzer.analyze(text, title)`; use as an async context manager."""

    def __init__(self, processes: int, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.processes = processes
        self.timeout_seconds = timeout_seconds
        self._children: set[_Child] = set()  # alive, idle or busy
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._tasks: set[asyncio.Future[Any]] = set()  # replacements, reaping
        self._closing = False
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["service.normalize"])

    async def __aenter__(self) -> Analyzer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def pids(self) -> list[int]:
        """The analysis processes' pids (none without processes)."""
        return sorted(child.pid for child in self._children)

    async def start(self) -> None:
        """Start every child; each is warm (its language model loaded) when this returns."""
        children = await asyncio.gather(
            *(self._start_child() for _ in range(self.processes)), return_exceptions=True
        )
        failed = [child for child in children if isinstance(child, BaseException)]
        for child in children:
            if isinstance(child, _Child):
                self._enlist(child)
        if failed:
            await self.close()
            raise RuntimeError("an analysis process did not start") from failed[0]

    async def _start_child(self) -> _Child:
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=serve, args=(theirs, os.getpid(), _analyze_packed), daemon=True
        )
        try:
            await asyncio.to_thread(process.start)
            reader, writer = await asyncio.open_connection(sock=ours)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = _Child(process, reader, writer)
        try:
            async with asyncio.timeout(START_TIMEOUT_SECONDS):
                kind, _ = await child.receive()
            if kind != READY:
                raise _ChildDied(f"said {kind!r} before it was ready")
        except BaseException:
            self._reap(child)
            raise
        return child

    def _enlist(self, child: _Child) -> None:
        self._children.add(child)
        self._idle.put_nowait(child)

    async def close(self) -> None:
        """Stop the children: each finishes what it analyses, within
        `CLOSE_GRACE_SECONDS`, then SIGKILL, so a stuck analysis never holds up a
        shutdown."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        children, self._children = list(self._children), set()
        for child in children:
            with contextlib.suppress(ConnectionError):
                child.writer.write_eof()  # the child reads the end of its input and exits
        loop = asyncio.get_running_loop()
        ends = loop.time() + CLOSE_GRACE_SECONDS
        for child in children:
            await asyncio.to_thread(child.process.join, max(0.0, ends - loop.time()))
        for child in children:
            if child.process.is_alive():
                log.warning("analysis_process_killed", pid=child.pid)
                child.kill()
                await asyncio.to_thread(child.process.join)
            child.writer.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def deadline(self, text: str) -> float:
        """Seconds the analysis of `text` may take."""
        return self.timeout_seconds * max(1.0, len(text) / MIB)

    async def analyze(self, text: str, title: str | None) -> Analysis:
        deadline = self.deadline(text)
        if self.processes == 0:
            if len(text) <= INLINE_ANALYSIS_CHARS:
                return analyze(text, title)
            try:
                async with asyncio.timeout(deadline):
                    return await asyncio.to_thread(analyze, text, title)
            except TimeoutError:
                raise self._timeout(deadline) from None
        request = _encoder.encode((text, title))
        for attempt in (1, 2):
            child = await self._idle.get()
            assert not self._closing, "the analyser is closed"
            # The conversation is a task of its own, so that a request that gives up
            # leaves the child to finish its answer and go back to the pool in step.
            conversation = asyncio.ensure_future(self._converse(child, request))
            conversation.add_done_callback(_retrieved)
            try:
                async with asyncio.timeout(deadline):
                    kind, payload = await asyncio.shield(conversation)
            except TimeoutError:
                child.kill()  # the conversation ends, and the child is replaced
                raise self._timeout(deadline) from None
            except _ChildDied:
                if attempt == 2:
                    raise AnalysisFailed(
                        "the analysis process died twice while analysing this text"
                    ) from None
                continue
            if kind == FAILED:
                raise AnalysisFailed(f"the analysis failed: {payload.decode()}")
            return _decoder.decode(payload)
        raise AssertionError("unreachable")

    async def _converse(self, child: _Child, request: bytes) -> tuple[bytes, bytes]:
        """Ask the child; back to the idle ones after an answer, replaced after none."""
        try:
            answer = await child.ask(request)
        except BaseException:
            self._retire(child)
            raise
        self._idle.put_nowait(child)
        return answer

    def _timeout(self, deadline: float) -> AnalysisTimeout:
        log.warning("analysis_timeout", limit_seconds=round(deadline, 3))
        return AnalysisTimeout(
            f"the analysis took longer than its deadline of {deadline:g} s",
            limit_seconds=round(deadline, 3),
        )

    def _retire(self, child: _Child) -> None:
        """Kill a child that died or was stuck, reap it, and start its replacement."""
        self._children.discard(child)
        self._reap(child)
        if not self._closing:
            log.warning("analysis_process_replaced", pid=child.pid)
            self._spawn(self._replace())

    def _reap(self, child: _Child) -> None:
        child.kill()
        self._spawn(asyncio.to_thread(child.process.join))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        """Start a child in place of one retired, trying again until one starts."""
        while True:
            try:
                child = await self._start_child()
            except Exception:
                log.exception("analysis_process_not_started")
                await asyncio.sleep(RESTART_DELAY_SECONDS)
                continue
            if self._closing:
                self._reap(child)
            else:
                self._enlist(child)
            return


def _retrieved(conversation: asyncio.Future[Any]) -> None:
    """Mark the outcome of a conversation as seen: the request that started it may have
    given up on it (a deadline, a cancellation), and the pool has dealt with it."""
    if not conversation.cancelled():
        conversation.exception()
