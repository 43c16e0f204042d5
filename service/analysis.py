"""Running the normalizer beside the server: in child processes, or in this one.

The normalizer is pure CPU, about 1 ms per 5 KB article, and a Python process runs
Python code one thread at a time: on the event loop it would take turns with HTTP
handling and the S3 transport for the same core. With `processes` >= 1 every analysis runs in a
pool of that many child processes, and the server process only sends the text and
decodes the answer (msgpack, tens of microseconds). With 0 it runs in this process:
inline for short texts, in a thread for long ones so the event loop keeps serving.

The children come from a forkserver that has imported the normalizer, so starting or
replacing one takes milliseconds and no thread of this process is ever forked. `start()`
loads the language model in every child before the server reports ready. Children exit
with the server, also when it is killed with SIGKILL. A child that
dies (killed, out of memory) breaks the whole pool in `concurrent.futures`; the pool is
then replaced and the analysis tried once more, so only a text that kills the analyser
twice in a row fails (500 analysis-failed).

Every analysis has a deadline, `timeout_seconds` per MiB of text (2**20 characters) and
at least `timeout_seconds`: no input, however hostile, holds a child longer. At most
`processes` analyses are handed to the pool at once (the others wait their turn in this
process), so the clock of an analysis starts when a child takes it, not while it queues.
Past the deadline the pool's children are killed with SIGKILL and the pool replaced
(`concurrent.futures` cannot stop one task); an analysis that was running beside it on
another child is started again on the new pool, without counting as a death of its
own, and the late one fails with 503 analysis-timeout. Without processes a thread cannot
be killed: the request still fails at the deadline, and the thread runs to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import select
import signal
import threading
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import msgspec
import structlog

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
MIB = 1024 * 1024
WARM_UP_TEXT = "Warming up: this sentence loads the language model in every analysis process."

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Analysis)


def _analyze_packed(text: str, title: str | None) -> bytes:
    """In a child: the analysis, packed (cheaper to send back than a pickle)."""
    return _encoder.encode(analyze(text, title))


def _child_started(server_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A child holds its own task queue open, so it would outlive a server killed with
    # SIGKILL; it watches the server instead and exits with it.
    try:
        server = os.pidfd_open(server_pid)
    except ProcessLookupError:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(server,), daemon=True).start()
    analyze(WARM_UP_TEXT, None)  # the language model loads before any deadline runs


def _exit_with(server: int) -> None:
    select.select([server], [], [])  # a pidfd becomes readable when its process exits
    os._exit(1)


class Analyzer:
    """`await analyzer.analyze(text, title)`; use as an async context manager."""

    def __init__(self, processes: int, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.processes = processes
        self.timeout_seconds = timeout_seconds
        self._pool: ProcessPoolExecutor | None = None
        self._warming: asyncio.Future[None] | None = None
        self._slots = asyncio.Semaphore(max(processes, 1))
        # Pools whose children this analyser killed (a deadline passed): the analyses
        # that were running on them are not to blame and are started again.
        self._killed: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()

    async def __aenter__(self) -> Analyzer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self.processes == 0:
            return
        self._pool = self._new_pool()
        self._warming = asyncio.ensure_future(self._warm_up(self._pool))
        await self._warming

    async def _warm_up(self, pool: ProcessPoolExecutor) -> None:
        """One warm-up per child: each starts and loads the language model now, not on a
        request (and not on an analysis's deadline)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(BrokenProcessPool):
            await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _analyze_packed, WARM_UP_TEXT, None)
                    for _ in range(self.processes)
                )
            )

    async def close(self) -> None:
        """Stop the children: those still analysing get `CLOSE_GRACE_SECONDS` to finish,
        then SIGKILL, so a stuck analysis never holds up a shutdown (a blocking
        `shutdown(wait=True)` waited for it for ever, the event loop stopped meanwhile)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        children = list(pool._processes.values())  # concurrent.futures keeps them
        pool.shutdown(wait=False, cancel_futures=True)
        loop = asyncio.get_running_loop()
        ends = loop.time() + CLOSE_GRACE_SECONDS
        for child in children:
            await asyncio.to_thread(child.join, max(0.0, ends - loop.time()))
        for child in children:
            if child.is_alive():
                log.warning("analysis_process_killed", pid=child.pid)
                child.kill()
                await asyncio.to_thread(child.join)

    def deadline(self, text: str) -> float:
        """Seconds the analysis of `text` may take."""
        return self.timeout_seconds * max(1.0, len(text) / MIB)

    async def analyze(self, text: str, title: str | None) -> Analysis:
        deadline = self.deadline(text)
        if self._pool is None:
            if len(text) <= INLINE_ANALYSIS_CHARS:
                return analyze(text, title)
            try:
                async with asyncio.timeout(deadline):
                    return await asyncio.to_thread(analyze, text, title)
            except TimeoutError:
                raise self._timeout(deadline) from None
        loop = asyncio.get_running_loop()
        deaths = 0
        async with self._slots:
            while True:
                pool = self._pool
                assert pool is not None, "the analyser is closed"
                if self._warming is not None:  # a new pool's children start first
                    await asyncio.shield(self._warming)
                try:
                    async with asyncio.timeout(deadline):
                        packed = await loop.run_in_executor(pool, _analyze_packed, text, title)
                except TimeoutError:
                    self._kill(pool)
                    raise self._timeout(deadline) from None
                except BrokenProcessPool:
                    if pool not in self._killed:
                        deaths += 1
                    self._replace(pool)
                    if deaths == 2:
                        raise AnalysisFailed(
                            "the analysis process died twice while analysing this text"
                        ) from None
                    continue
                return _decoder.decode(packed)

    def _timeout(self, deadline: float) -> AnalysisTimeout:
        log.warning("analysis_timeout", limit_seconds=round(deadline, 3))
        return AnalysisTimeout(
            f"the analysis took longer than its deadline of {deadline:g} s",
            limit_seconds=round(deadline, 3),
        )

    def _kill(self, pool: ProcessPoolExecutor) -> None:
        """Kill the children of `pool` (one of them is stuck) and replace the pool."""
        if pool is not self._pool:
            return  # replaced already
        self._killed.add(pool)
        for process in list(pool._processes.values()):  # concurrent.futures keeps them
            process.kill()
        self._replace(pool)

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["service.normalize"])
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_child_started,
            initargs=(os.getpid(),),
        )

    def _replace(self, broken: ProcessPoolExecutor | None) -> None:
        """Swap a broken pool for a new one, once however many requests saw it break."""
        if self._pool is broken and broken is not None:
            log.warning("analysis_pool_replaced", processes=self.processes)
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self._warming = asyncio.ensure_future(self._warm_up(self._pool))
