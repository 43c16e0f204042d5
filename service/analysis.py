"""Running the normalizer beside the server: in child processes, or in this one.

The normalizer is pure CPU, about 1 ms per 5 KB article, and a Python process runs
Python code one thread at a time: on the event loop it would take turns with HTTP
handling and boto3 for the same core. With `processes` >= 1 every analysis runs in a
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
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import msgspec
import structlog

from service.errors import AnalysisFailed
from service.normalize import Analysis, analyze

log = structlog.get_logger("vellum")

# In-process mode: texts longer than this are analysed in a thread (the normalizer takes
# about 1 ms per 5 KB; a thread hop costs about 0.1 ms).
INLINE_ANALYSIS_CHARS = 32 * 1024
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


def _exit_with(server: int) -> None:
    select.select([server], [], [])  # a pidfd becomes readable when its process exits
    os._exit(1)


class Analyzer:
    """`await analyzer.analyze(text, title)`; use as an async context manager."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def __aenter__(self) -> Analyzer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    async def start(self) -> None:
        if self.processes == 0:
            return
        self._pool = self._new_pool()
        loop = asyncio.get_running_loop()
        # One warm-up per child: each loads the language model now, not on a request.
        await asyncio.gather(
            *(
                loop.run_in_executor(self._pool, _analyze_packed, WARM_UP_TEXT, None)
                for _ in range(self.processes)
            )
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def analyze(self, text: str, title: str | None) -> Analysis:
        if self._pool is None:
            if len(text) > INLINE_ANALYSIS_CHARS:
                return await asyncio.to_thread(analyze, text, title)
            return analyze(text, title)
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._pool
            try:
                packed = await loop.run_in_executor(pool, _analyze_packed, text, title)
            except BrokenProcessPool:
                self._replace(pool)
                if attempt == 2:
                    raise AnalysisFailed(
                        "the analysis process died twice while analysing this text"
                    ) from None
                continue
            return _decoder.decode(packed)
        raise AssertionError("unreachable")

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
