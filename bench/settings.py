"""What one benchmark run does: command-line flags, defaulted from `BENCH_*` variables.

Only this module reads `BENCH_*` and `ARTICLE_CORPUS_DIR`. The `vellum serve` child gets
this environment minus every `AWS_*` and `VELLUM_*` variable, plus its own settings
(see `bench.processes`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    docs: int  # documents per measured phase
    warmup: int  # unmeasured documents through each target before the first phase
    levels: tuple[int, ...]  # ingest concurrencies
    get_concurrency: int
    corpus_dir: str
    output: str
    finding_sizes: tuple[int, ...] = (10_000,)  # archive sizes of the lookup phase


def parse(argv: Sequence[str] | None = None) -> Settings:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure Vellum against plain boto3 (see docs/performance.md).",
    )
    parser.add_argument(
        "--docs",
        type=_positive,
        default=env.get("BENCH_DOCS", "500"),
        help="documents per measured phase (BENCH_DOCS, default 500)",
    )
    parser.add_argument(
        "--warmup",
        type=_positive,
        default=env.get("BENCH_WARMUP", "50"),
        help="unmeasured warm-up documents per target (BENCH_WARMUP, default 50)",
    )
    parser.add_argument(
        "--levels",
        type=_levels,
        default=env.get("BENCH_LEVELS", "1,16,64"),
        help="comma-separated ingest concurrencies (BENCH_LEVELS, default 1,16,64)",
    )
    parser.add_argument(
        "--get-concurrency",
        type=_positive,
        default=env.get("BENCH_GET_CONCURRENCY", "16"),
        help="concurrency of the read phases (BENCH_GET_CONCURRENCY, default 16)",
    )
    parser.add_argument(
        "--finding-sizes",
        type=_sizes,
        default=env.get("BENCH_FINDING_SIZES", "10000"),
        help="archive sizes the lookups are timed at, 0 for none "
        "(BENCH_FINDING_SIZES, default 10000)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).resolve().parent / "results.json",
        help="where to write the results (default bench/results.json)",
    )
    args = parser.parse_args(argv)
    return Settings(
        docs=args.docs,
        warmup=args.warmup,
        levels=args.levels,
        get_concurrency=args.get_concurrency,
        corpus_dir=env.get("ARTICLE_CORPUS_DIR") or str(DEFAULT_CORPUS),
        output=str(args.output),
        finding_sizes=args.finding_sizes,
    )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _sizes(value: str) -> tuple[int, ...]:
    """`_levels`, or `0`: no phase at all."""
    return () if value.strip() == "0" else _levels(value)


def _levels(value: str) -> tuple[int, ...]:
    try:
        return tuple(_positive(part) for part in value.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list like 1,16,64") from exc
