"""The normalizer run in child processes gives what it gives in-process, and survives them dying."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service.analysis import INLINE_ANALYSIS_CHARS, Analyzer
from service.config import Config
from service.errors import AnalysisFailed, AnalysisTimeout
from service.normalize import Analysis, analyze
from service.storage.s3 import S3ObjectStore
from tests.slow_analysis import DEATH_MARK, REFUSED_MARK, SLOW_MARK, packed_slow_on_mark

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
TEXTS = [
    *(path.read_bytes().decode("utf-8", "replace") for path in sorted(SEEDS.glob("*.txt"))),
    "",
    "x",
    "\u201cUnclosed quote\n\n\u2018and another [sic] \u2026",
    "e\u0301 decomposed, \r\n CRLF and \u00a0 spaces",
]


@pytest.fixture
async def analyzer():  # type: ignore[no-untyped-def]
    async with Analyzer(2) as started:
        yield started


async def test_child_processes_give_the_in_process_analysis(analyzer: Analyzer) -> None:
    assert len(TEXTS) > 10
    for text in TEXTS:
        assert await analyzer.analyze(text, "A title") == analyze(text, "A title")


async def test_a_killed_child_is_replaced_and_the_analysis_retried(analyzer: Analyzer) -> None:
    before = analyzer.pids()
    assert len(before) == 2
    killed = before[0]
    os.kill(killed, signal.SIGKILL)
    await _until(lambda: not _alive(killed))
    for text in TEXTS[:4]:  # one of them is handed to the dead child, and retried
        assert await analyzer.analyze(text, None) == analyze(text, None)
    await _until(lambda: len(analyzer.pids()) == 2)
    assert killed not in analyzer.pids()
    assert before[1] in analyzer.pids()  # the other child was not disturbed


@pytest.mark.usefixtures("stuck_on_mark")
async def test_a_text_that_kills_its_child_twice_is_a_clear_error() -> None:
    """A text that makes its child exit (as a crash in the normalizer, or running out of
    memory, would) is tried on a second child, then fails with AnalysisFailed, not a
    hang; the children that died are replaced and the analyser serves on."""
    async with Analyzer(2) as analyzer:
        before = analyzer.pids()
        with pytest.raises(AnalysisFailed, match="died twice"):
            await analyzer.analyze(f"Deadly. {DEATH_MARK}", None)
        await _until(lambda: not [pid for pid in before if _alive(pid)])  # dead, reaped
        assert await analyzer.analyze(TEXTS[0], None) == analyze(TEXTS[0], None)
        await _until(lambda: len(analyzer.pids()) == 2)
        assert not set(analyzer.pids()) & set(before)


@pytest.mark.usefixtures("stuck_on_mark")
async def test_an_exception_in_the_normalizer_fails_the_text_not_the_child() -> None:
    async with Analyzer(1) as analyzer:
        before = analyzer.pids()
        with pytest.raises(AnalysisFailed, match="ValueError: a text the normalizer refuses"):
            await analyzer.analyze(f"Refused. {REFUSED_MARK}", None)
        assert analyzer.pids() == before
        assert await analyzer.analyze(TEXTS[0], None) == analyze(TEXTS[0], None)


async def test_a_request_that_gives_up_leaves_its_child_in_step(analyzer: Analyzer) -> None:
    """A cancelled analysis (a client gone, a shutdown) must not leave its answer to be
    read as the next text's."""
    first, second = TEXTS[0], TEXTS[1]
    for _ in range(4):
        given_up = asyncio.ensure_future(analyzer.analyze(first, None))
        await asyncio.sleep(0)  # handed to a child
        given_up.cancel()
        assert await analyzer.analyze(second, None) == analyze(second, None)
    assert len(analyzer.pids()) == 2


async def test_without_processes_the_analysis_runs_in_this_process() -> None:
    async with Analyzer(0) as analyzer:
        assert analyzer.pids() == []
        assert await analyzer.analyze(TEXTS[0], None) == analyze(TEXTS[0], None)


def test_children_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    """A process holding an analyser is SIGKILLed: its analysis children must not linger."""
    script = (
        "import asyncio, sys\n"
        "from service.analysis import Analyzer\n"
        "async def main():\n"
        "    async with Analyzer(2) as analyzer:\n"
        "        print(*analyzer.pids(), flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout is not None
        children = [int(pid) for pid in process.stdout.readline().split()]
        assert len(children) == 2
        for pid in children:
            os.kill(pid, 0)  # alive while the server is
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


CLOSING_WITH_A_STUCK_ANALYSIS = """
import asyncio, sys
import service.analysis
from tests.slow_analysis import DEATH_MARK, REFUSED_MARK, SLOW_MARK, packed_slow_on_mark
service.analysis._analyze_packed = packed_slow_on_mark

async def main():
    analyzer = service.analysis.Analyzer(1, timeout_seconds=600)  # no deadline will help
    await analyzer.start()
    print(*analyzer.pids(), flush=True)
    stuck = asyncio.ensure_future(analyzer.analyze("Stuck. " + SLOW_MARK, None))
    await asyncio.sleep(0.5)
    stuck.cancel()  # the request gave up (the server's shutdown timeout passed)
    await analyzer.__aexit__(None, None, None)
    print("closed", flush=True)

asyncio.run(main())
"""


def test_closing_the_analyser_kills_a_stuck_analysis_after_its_grace() -> None:
    """Closing waited for a running analysis (`shutdown(wait=True)`, the event loop
    stopped meanwhile): SIGTERM while one was stuck never finished. Now the child gets
    CLOSE_GRACE_SECONDS (5) and is killed; the test's bound (60 s) is only a hang guard
    below the stuck analysis's 120 s."""
    process = subprocess.Popen(
        [sys.executable, "-c", CLOSING_WITH_A_STUCK_ANALYSIS],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    children = [int(pid) for pid in out.splitlines()[0].split()]
    assert process.returncode == 0, out
    assert out.splitlines()[-1] == "closed"
    assert not [pid for pid in children if _alive(pid)]


# A text the children's analysis (tests/slow_analysis.py) never finishes.
SLOW_TEXT = f"An article. {SLOW_MARK}"
# Long enough to be analysed off the event loop when there are no analysis processes.
LONG_TEXT = "A long article. " * (INLINE_ANALYSIS_CHARS // 8)


@pytest.fixture
def stuck_on_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Analysis processes run `packed_slow_on_mark`: stuck on SLOW_MARK, dead on
    DEATH_MARK, raising on REFUSED_MARK, else as ever."""
    monkeypatch.setattr("service.analysis._analyze_packed", packed_slow_on_mark)


@pytest.mark.usefixtures("stuck_on_mark")
async def test_an_analysis_past_its_deadline_is_killed_and_the_others_go_on() -> None:
    async with Analyzer(2, timeout_seconds=1.0) as analyzer:
        before = analyzer.pids()
        slow = asyncio.ensure_future(analyzer.analyze(SLOW_TEXT, None))
        others = [await analyzer.analyze(text, None) for text in TEXTS[:3]]
        assert others == [analyze(text, None) for text in TEXTS[:3]]
        with pytest.raises(AnalysisTimeout) as raised:
            await slow
        assert raised.value.status == 503
        assert raised.value.extensions["limit_seconds"] == 1.0
        await _until(lambda: len([pid for pid in before if _alive(pid)]) == 1)  # the stuck one
        await _until(lambda: analyzer.pids() != before and len(analyzer.pids()) == 2)
        assert len(set(analyzer.pids()) & set(before)) == 1  # the stuck one was replaced
        assert await analyzer.analyze(TEXTS[0], None) == analyze(TEXTS[0], None)


def test_the_deadline_grows_with_the_text() -> None:
    analyzer = Analyzer(0, timeout_seconds=2.0)
    assert analyzer.deadline("short") == 2.0
    assert analyzer.deadline("x" * 3 * 1024 * 1024) == 6.0


class GatedAnalysis:
    """Stands in for the normalizer in this process: blocks until the gate opens."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.finished = threading.Event()

    def __call__(self, text: str, title: str | None) -> Analysis:
        self.started.set()
        self.gate.wait(30)  # a hang guard only
        self.finished.set()
        return analyze("x", title)


async def test_without_processes_a_long_text_leaves_the_event_loop_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gated = GatedAnalysis()
    monkeypatch.setattr("service.analysis.analyze", gated)
    async with Analyzer(0) as analyzer:
        task = asyncio.ensure_future(analyzer.analyze(LONG_TEXT, None))
        await _until(gated.started.is_set)
        assert not gated.finished.is_set()  # this loop runs while the analysis does
        gated.gate.set()
        await task


async def test_without_processes_the_deadline_still_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gated = GatedAnalysis()
    monkeypatch.setattr("service.analysis.analyze", gated)
    try:
        async with Analyzer(0, timeout_seconds=0.2) as analyzer:
            with pytest.raises(AnalysisTimeout):
                await analyzer.analyze(LONG_TEXT, None)
            assert not gated.finished.is_set()
    finally:
        gated.gate.set()


@pytest.mark.usefixtures("stuck_on_mark")
async def test_a_request_past_the_deadline_gets_503_and_stores_nothing(
    make_client, store: S3ObjectStore
) -> None:  # type: ignore[no-untyped-def]
    config = Config(analysis_processes=2, analysis_timeout_seconds=1.0)
    client = await make_client(store, config)
    slow = asyncio.ensure_future(
        client.post("/v1/documents", data=SLOW_TEXT.encode(), headers=TEXT_PLAIN)
    )
    served = await client.post("/v1/documents", data=b"Served meanwhile.", headers=TEXT_PLAIN)
    assert served.status == 201
    kept = await store.list_keys("")
    response = await slow
    assert response.status == 503
    assert response.headers["Retry-After"].isdigit()
    problem = await response.json()
    assert problem["type"] == "/problems/analysis-timeout"
    assert problem["limit_seconds"] == 1.0
    assert await store.list_keys("") == kept  # nothing of the slow request stored
    again = await client.post("/v1/documents", data=b"And after.", headers=TEXT_PLAIN)
    assert again.status == 201


TEXT_PLAIN = {"Content-Type": "text/plain; charset=utf-8"}


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`, with a generous bound as a hang guard only."""
    async with asyncio.timeout(30):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)
