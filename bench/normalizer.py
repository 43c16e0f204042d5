"""The normalizer on its own: MB/s per core over the corpus, and how time grows with size.

Runs in this process before any server starts, on CPU time (`time.process_time`), best of
`ROUNDS`, so neighbours on a shared machine distort it as little as possible. The
language detector's share is measured apart, as it is a model run rather than text
processing. Growth: the longest article repeated 1, 2, 4 and 8 times; linear growth
keeps milliseconds per copy flat.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from service.normalize import analyze, normalize_text
from service.normalize.language import detect_language

ROUNDS = 3
COPIES = (1, 2, 4, 8)


class Growth(msgspec.Struct, frozen=True):
    copies: int
    megabytes: float
    ms: float
    ms_per_copy: float


class NormalizerResult(msgspec.Struct, frozen=True):
    articles: int
    megabytes: float  # UTF-8 size of the corpus
    mb_per_second: float  # whole analysis, one core
    mb_per_second_without_language: float
    language_share: float  # of the analysis time
    ms_per_article: float
    longest_article_megabytes: float
    longest_article_ms: float
    growth: list[Growth]


def best_cpu_seconds(work: Callable[[], object], rounds: int = ROUNDS) -> float:
    """The least CPU time `work` took over `rounds` runs (this bench and the hostile one)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def measure(texts: tuple[str, ...]) -> NormalizerResult:
    megabytes = sum(len(text.encode()) for text in texts) / 1e6
    analyze(texts[0])  # loads the language model outside the measurement
    total = best_cpu_seconds(lambda: [analyze(text) for text in texts])
    normalized = [normalize_text(text) for text in texts]
    language = best_cpu_seconds(lambda: [detect_language(text) for text in normalized])
    longest = max(texts, key=len)
    growth = []
    for copies in COPIES:
        text = "\n\n".join([longest] * copies)
        seconds = best_cpu_seconds(lambda text=text: analyze(text))  # type: ignore[misc]
        growth.append(
            Growth(
                copies=copies,
                megabytes=len(text.encode()) / 1e6,
                ms=seconds * 1000,
                ms_per_copy=seconds * 1000 / copies,
            )
        )
    return NormalizerResult(
        articles=len(texts),
        megabytes=megabytes,
        mb_per_second=megabytes / total,
        mb_per_second_without_language=megabytes / (total - language),
        language_share=language / total,
        ms_per_article=total * 1000 / len(texts),
        longest_article_megabytes=growth[0].megabytes,
        longest_article_ms=growth[0].ms,
        growth=growth,
    )


def describe(result: NormalizerResult) -> str:
    growth = ", ".join(f"×{g.copies} {g.ms_per_copy:.1f}" for g in result.growth)
    return "\n".join(
        [
            f"normalizer: {result.mb_per_second:.1f} MB/s per core over {result.articles} "
            f"articles ({result.ms_per_article:.2f} ms each); "
            f"{result.mb_per_second_without_language:.1f} MB/s without language detection "
            f"({result.language_share:.0%} of the time)",
            f"normalizer: longest article {result.longest_article_megabytes:.2f} MB in "
            f"{result.longest_article_ms:.1f} ms; ms per copy when repeated: {growth}",
        ]
    )
