"""service.progress.CountProgress: the bar of `reprocess`, `verify` and `export` (and any
later long command): a rich bar with count, rate and ETA on a terminal, plain lines
(rate-limited, and one at the end) when standard error is not one."""

from __future__ import annotations

import io

from rich.console import Console

from service.progress import PLAIN_SECONDS, CountProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(clock: Clock) -> tuple[CountProgress, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    return CountProgress("reprocess", "documents", console=console, clock=clock), out


def test_off_a_terminal_it_writes_a_plain_line_now_and_then_and_at_the_end() -> None:
    clock = Clock()
    progress, out = plain(clock)
    with progress:
        progress.start(1000)
        clock.now += 2
        progress.advance(100)  # the first line comes at once
        for done in range(101, 500):
            clock.now += 0.001
            progress.advance(done)  # within PLAIN_SECONDS: no line
        clock.now += PLAIN_SECONDS
        progress.advance(500)
        clock.now += 1
        progress.advance(1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("reprocess: 100/1,000 documents (10%), 50/s")
    assert "ETA 18 s" in lines[0]
    assert lines[1].startswith("reprocess: 500/1,000 documents (50%)")
    assert lines[2].startswith("reprocess: 1,000/1,000 documents (100%)")
    assert "\x1b[" not in out.getvalue()  # no terminal codes in a log


def test_a_run_stopped_early_says_how_far_it_got() -> None:
    clock = Clock()
    progress, out = plain(clock)
    try:
        with progress:
            progress.start(10)
            progress.advance(3)
            clock.now += 1
            progress.advance(4)
            raise RuntimeError("storage went away")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines()[-1].startswith("reprocess: 4/10 documents (40%)")


def test_nothing_to_do_is_one_line_too() -> None:
    clock = Clock()
    progress, out = plain(clock)
    with progress:
        progress.start(0)
    assert out.getvalue().splitlines() == [
        "reprocess: 0/0 documents (100%), 0/s, 0.0 s elapsed, ETA 0 s"
    ]


def test_on_a_terminal_it_is_a_bar_with_count_rate_and_eta() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with CountProgress("verify", "objects", console=console) as progress:
        progress.count(0, 40)
        progress.count(40, 40)
    shown = out.getvalue()
    assert "verify" in shown
    assert "40/40" in shown
    assert "objects" in shown
    assert "ETA" in shown


def test_a_streamed_listing_counts_as_it_goes_and_ends_with_its_total() -> None:
    clock = Clock()
    progress, out = plain(clock)
    with progress:
        progress.start(None)  # ids come from a paged listing: no total yet
        clock.now += 1
        progress.advance(30)
        clock.now += 1
        progress.advance(60)  # within PLAIN_SECONDS: no line
    lines = out.getvalue().splitlines()
    assert lines == [
        "reprocess: 30 documents so far, 30/s, 1.0 s elapsed",
        "reprocess: 60/60 documents (100%), 30/s, 2.0 s elapsed, ETA 0 s",
    ]


def test_a_streamed_listing_stopped_early_claims_no_total() -> None:
    clock = Clock()
    progress, out = plain(clock)
    try:
        with progress:
            progress.start(None)
            clock.now += 1
            progress.advance(5)
            progress.advance(7)
            raise RuntimeError("storage went away")
    except RuntimeError:
        pass
    assert out.getvalue().splitlines()[-1] == "reprocess: 7 documents so far, 7/s, 1.0 s elapsed"
