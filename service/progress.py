"""Progress of the long commands, on standard error: one implementation for all of them.

`ImportProgress` is `vellum import`'s bar over its input's bytes. `CountProgress` is the
bar of every command that works through a known number of things (`reprocess`, `verify`,
`export`, and any later one such as `reindex`): done of total, rate, time elapsed and
ETA. On a terminal both are rich bars; when standard error is not a terminal (a log, a
pipe, CI) `CountProgress` writes a plain line at most every PLAIN_SECONDS, and one when
it is done, instead of a bar nobody sees redrawn. Each command prints its one-line
summary on standard output at the end.

A command hooks in as

    with CountProgress("reindex", "records") as progress:
        progress.start(total)          # once the total is known (after listing)
        ... progress.advance(done)     # the count done so far, from any task

or hands `progress.count` (done, total) to a job that lists what it works on itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from service.jobs import model


class ImportProgress:
    """A bar over the input's bytes, with documents per second and failures so far."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[docs]} docs, {task.fields[rate]:.0f} docs/s"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.first_total: int | None = None

    def __enter__(self) -> ImportProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def follow(self, job: str, input_bytes: int, shard: model.Shard | None = None) -> None:
        """Show a bar for `job`, whose input has `input_bytes` bytes."""
        label = f"import {job[:8]}"
        if shard is not None:
            label += f" shard {shard.index}/{shard.count}"
        self.task = self.bar.add_task(label, total=input_bytes, docs=0, rate=0.0, failed=0)

    def update(self, processed_bytes: int, counts: model.Counts) -> None:
        """The job has read `processed_bytes` of its input, with these counts so far."""
        if self.task is None:
            return
        if self.first_total is None:
            self.first_total = counts.total  # resumed jobs start part way
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.bar.update(
            self.task,
            completed=processed_bytes,
            docs=counts.total,
            rate=(counts.total - self.first_total) / elapsed,
            failed=counts.failed,
        )


PLAIN_SECONDS = 10.0


class CountProgress:
    """Done of total things, with their rate and ETA (see the module's docstring)."""

    def __init__(
        self,
        action: str,
        unit: str,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.action, self.unit = action, unit
        self.console = console or Console(stderr=True)
        self.clock = clock
        self.started = clock()
        self.total: int | None = None
        self.done = 0
        self._printed_at: float | None = None
        self._printed: int | None = None  # the count the last plain line showed
        self._printed_total: int | None = None  # and the total it showed
        self.bar: Progress | None = None
        if self.console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}, {task.fields[rate]:.0f}/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
        self.task: TaskID | None = None

    def __enter__(self) -> CountProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and self.total is None:
            self.start(self.done)  # a streamed listing ran to its end: all there was
            if self.bar is not None and self.task is not None:
                self.bar.update(self.task, completed=self.done)
        if self.bar is not None:
            self.bar.stop()
        elif self._printed != self.done or self._printed_total != self.total:
            self._line()  # where it ended (early, on an error; or with nothing to do)

    def start(self, total: int | None) -> None:
        """The total is known (or changed; None: not known, things are counted as they
        come, as from a paged listing): the bar's clock starts at the first call."""
        if self.task is None and self._printed_at is None:
            self.started = self.clock()
        self.total = total
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(self.action, total=total, unit=self.unit, rate=0.0)
            else:
                self.bar.update(self.task, total=total)

    def count(self, done: int, total: int) -> None:
        """`done` of `total` so far, as a job that learns its total as it goes reports."""
        if total != self.total:
            self.start(total)
        self.advance(done)

    def advance(self, done: int) -> None:
        self.done = done
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=done, rate=self.rate())
            return
        now = self.clock()
        finished = self.total is not None and done >= self.total
        if finished or self._printed_at is None or now - self._printed_at >= PLAIN_SECONDS:
            self._line()

    def rate(self) -> float:
        return self.done / max(self.clock() - self.started, 1e-6)

    def _line(self) -> None:
        self._printed_at, self._printed, self._printed_total = self.clock(), self.done, self.total
        rate, elapsed = self.rate(), self.clock() - self.started
        if self.total is None:
            self.console.print(
                f"{self.action}: {self.done:,} {self.unit} so far, {rate:,.0f}/s, "
                f"{elapsed:.1f} s elapsed",
                highlight=False,
                soft_wrap=True,
            )
            return
        share = 100 * self.done // self.total if self.total else 100
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        self.console.print(
            f"{self.action}: {self.done:,}/{self.total:,} {self.unit} ({share}%), "
            f"{rate:,.0f}/s, {elapsed:.1f} s elapsed, ETA {left:.0f} s",
            highlight=False,
            soft_wrap=True,
        )


def summary(job: str, state: str, counts: model.Counts, error: str | None) -> str:
    lines = [
        f"import {job}: {state}",
        f"  {counts.total:,} lines: {counts.created:,} created, "
        f"{counts.duplicates:,} duplicates, {counts.failed:,} failed",
    ]
    if error:
        lines.append(f"  error: {error}")
    if counts.failed:
        lines.append(
            f"  bad lines: GET /v1/imports/{job}/errors, "
            f"or the objects under {model.PREFIX}{job}/errors/"
        )
    return "\n".join(lines)
