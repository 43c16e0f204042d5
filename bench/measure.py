"""Timing a phase: latencies and errors of its operations, its CPU by process, its rates.

A phase is `count` operations (one per document) run by `concurrency` workers; its
result holds absolute figures only. Ratios between phases are made by `bench.report`.
"""

from __future__ import annotations

import math

import msgspec

from bench.procstat import CpuUsage


class BenchError(Exception):
    """The run cannot go on: a server did not start, or a phase had no success."""


class Timings(msgspec.Struct, kw_only=True):
    """What the workers of one phase saw: wall time and per-operation latencies."""

    seconds: float = 0.0
    latencies: list[float] = msgspec.field(default_factory=list)  # successful only
    errors: int = 0
    first_error: str | None = None
    body_bytes: int = 0  # response bytes read, for read phases

    def failed(self, reason: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = reason


class Phase(msgspec.Struct, frozen=True, kw_only=True):
    target: str  # "boto3" (the ceiling) or "vellum"
    operation: str  # "ingest" or "read"
    concurrency: int
    docs: int  # operations that succeeded
    errors: int
    seconds: float
    docs_per_second: float
    p50_ms: float
    p99_ms: float
    # CPU milliseconds per successful document, by process: the watched servers,
    # "bench" (this process: load generator or boto3 client) and "other".
    cpu_ms_per_doc: dict[str, float]
    other_share_of_core: float  # other CPU seconds per wall second during the phase
    mean_body_bytes: float | None = None
    first_error: str | None = None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(
    timings: Timings, usage: CpuUsage, *, target: str, operation: str, concurrency: int
) -> Phase:
    """The phase's rates, latency percentiles and CPU per document by process."""
    docs = len(timings.latencies)
    if docs == 0:
        raise BenchError(
            f"{target} {operation} at concurrency {concurrency}: every operation failed; "
            f"first error: {timings.first_error}"
        )
    per_doc = {role: seconds * 1000 / docs for role, seconds in usage.processes.items()}
    per_doc["bench"] = usage.bench * 1000 / docs
    per_doc["other"] = usage.other * 1000 / docs
    return Phase(
        target=target,
        operation=operation,
        concurrency=concurrency,
        docs=docs,
        errors=timings.errors,
        seconds=timings.seconds,
        docs_per_second=docs / timings.seconds,
        p50_ms=percentile(timings.latencies, 0.50) * 1000,
        p99_ms=percentile(timings.latencies, 0.99) * 1000,
        cpu_ms_per_doc=per_doc,
        other_share_of_core=usage.other_share_of_core,
        mean_body_bytes=timings.body_bytes / docs if timings.body_bytes else None,
        first_error=timings.first_error,
    )
