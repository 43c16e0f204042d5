"""The progress bars of `vellum import` (over bytes) and of the commands that go through
every record (`vellum reindex`: over records), and the import summary (rich, on
standard error)."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
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


class CountProgress:
    """A bar over a number of things (`vellum reindex`: record versions), with their rate."""

    def __init__(self, label: str, console: Console | None = None) -> None:
        self.label = label
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TextColumn("{task.fields[rate]:.0f}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self.task: TaskID | None = None
        self.started = time.monotonic()

    def __enter__(self) -> CountProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def total(self, total: int) -> None:
        self.task = self.bar.add_task(self.label, total=total, rate=0.0)

    def update(self, done: int) -> None:
        if self.task is not None:
            rate = done / max(time.monotonic() - self.started, 1e-6)
            self.bar.update(self.task, completed=done, rate=rate)
