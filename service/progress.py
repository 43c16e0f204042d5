"""The progress bar and summary of `vellum import` (rich, on standard error)."""

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
from service.jobs.imports import Progress as ProgressCallback


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

    def follow(self, manifest: model.Manifest) -> ProgressCallback:
        label = f"import {manifest.job[:8]}"
        if manifest.shard is not None:
            label += f" shard {manifest.shard.index}/{manifest.shard.count}"
        self.task = self.bar.add_task(label, total=manifest.input_bytes, docs=0, rate=0.0, failed=0)
        return self.update

    def update(self, checkpoint: model.Checkpoint) -> None:
        if self.task is None:
            return
        if self.first_total is None:
            self.first_total = checkpoint.counts.total  # resumed jobs start part way
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.bar.update(
            self.task,
            completed=checkpoint.next_offset,
            docs=checkpoint.counts.total,
            rate=(checkpoint.counts.total - self.first_total) / elapsed,
            failed=checkpoint.counts.failed,
        )


def summary(manifest: model.Manifest, final: model.Checkpoint) -> str:
    counts = final.counts
    lines = [
        f"import {manifest.job}: {final.state}",
        f"  {counts.total:,} lines: {counts.created:,} created, "
        f"{counts.duplicates:,} duplicates, {counts.failed:,} failed",
    ]
    if final.error:
        lines.append(f"  error: {final.error}")
    if counts.failed:
        lines.append(
            f"  bad lines: GET /v1/imports/{manifest.job}/errors, "
            f"or the objects under {model.PREFIX}{manifest.job}/errors/"
        )
    return "\n".join(lines)
