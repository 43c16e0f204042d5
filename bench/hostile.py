"""The normalizer on hostile input: milliseconds per KB at 10 KB and at 1 MB.

Each pattern is a text built to make some stage of the normalizer do more work per
character than articles do: quotation marks that open and never close, quotes left open
over many paragraphs, closers that match no open quote, runs of combining marks, and so
on. Linear work keeps ms per KB flat as the input grows: the ratio of ms per KB at 1 MB to
that at 10 KB stays near 1 (the target is at most 1.5). Runs in the bench's own process,
on CPU time, best of `ROUNDS` (of `LARGE_ROUNDS` at 1 MB).
tests/test_normalizer_linearity.py holds the same patterns to a deterministic work count.
"""

from __future__ import annotations

import msgspec

from bench.normalizer import best_cpu_seconds
from service.normalize import analyze

ROUNDS = 3
LARGE_ROUNDS = 2
SMALL_BYTES = 10_000
LARGE_BYTES = 1_000_000
RATIO_TARGET = 1.5

# name -> the repeated unit, and what comes before and after the repetitions.
PATTERNS: dict[str, tuple[str, str, str]] = {
    "straight ' opening, never closed": ("", " 'a", ""),
    'straight " over line pairs': ("", '"a\nb"\n', ""),
    "“ opening, » closing none": ("", "“a ", ""),  # then as many "a» " (below)
    "“ open over mark-less paragraphs": ("“a\n\n", "b\n\n", "”"),
    "‘ with possessive s’": ("", "‘Americans’ ", ""),
    "“ opening, ’ closing none": ("", "“a ", ""),  # then as many "a’ "
    "‘ open at every paragraph end": ("", "‘a\n\nb don’t\n\n", ""),
    "repeated “‘ over paragraphs": ("", "“‘a\n\n", ""),
    "' closers without openers": ("", "a' ", ""),
    "brackets opening, never closed": ("", "[a ", ""),
    "ellipses and stops": ("", ". . .. ", ""),
    "hard-wrapped lines": ("", "a b\nc d\n\n", ""),
    "labels on every line": ("", "AB CD: x\n", ""),
    "combining marks out of order": ("a", "\u0301\u0316", ""),
    "one long word": ("", "ab", ""),
    # Paragraphs the greedy reading leaves unbalanced, each weighed by the decoder.
    "paragraphs for the decoder": (
        "",
        "They played “Lights (“Home” and “one ”two ‘ three’ ”four ‘five‘ at nine.\n\n",
        "",
    ),
}
# Patterns whose second half closes (or fails to close) what the first half opened.
SECOND_HALVES = {"“ opening, » closing none": "a» ", "“ opening, ’ closing none": "a’ "}


def hostile_text(name: str, repeats: int) -> str:
    """Pattern `name` with its unit repeated `repeats` times."""
    before, unit, after = PATTERNS[name]
    second = SECOND_HALVES.get(name)
    if second is not None:
        half = max(repeats // 2, 1)
        return before + unit * half + second * half + after
    return before + unit * repeats + after


def text_of_size(name: str, target_bytes: int) -> str:
    """Pattern `name` repeated until its UTF-8 reaches about `target_bytes`."""
    fixed = len(hostile_text(name, 2).encode())
    unit = (len(hostile_text(name, 4).encode()) - fixed) / 2
    return hostile_text(name, max(int((target_bytes - fixed) / unit) + 2, 2))


class HostileResult(msgspec.Struct, frozen=True):
    pattern: str
    small_kb: float
    small_ms_per_kb: float
    large_kb: float
    large_ms_per_kb: float
    ratio: float  # large ÷ small ms per KB; linear work keeps it near 1


def measure(patterns: tuple[str, ...] = tuple(PATTERNS)) -> list[HostileResult]:
    analyze("Warm up the language model before measuring anything.")
    results = []
    for name in patterns:
        per_kb = []
        sizes = []
        for size, rounds in ((SMALL_BYTES, ROUNDS), (LARGE_BYTES, LARGE_ROUNDS)):
            text = text_of_size(name, size)
            kb = len(text.encode()) / 1000
            seconds = best_cpu_seconds(lambda text=text: analyze(text), rounds)  # type: ignore[misc]
            per_kb.append(seconds * 1000 / kb)
            sizes.append(kb)
        results.append(
            HostileResult(
                pattern=name,
                small_kb=sizes[0],
                small_ms_per_kb=per_kb[0],
                large_kb=sizes[1],
                large_ms_per_kb=per_kb[1],
                ratio=per_kb[1] / per_kb[0],
            )
        )
    return results


def describe(results: list[HostileResult]) -> str:
    worst = max(results, key=lambda result: result.ratio)
    lines = [
        f"hostile: {r.pattern}: {r.small_ms_per_kb:.3f} ms/KB at {r.small_kb:.0f} KB, "
        f"{r.large_ms_per_kb:.3f} at {r.large_kb:.0f} KB, ratio {r.ratio:.2f}"
        for r in results
    ]
    verdict = "met" if worst.ratio <= RATIO_TARGET else "NOT met"
    lines.append(
        f"hostile: worst ratio {worst.ratio:.2f} ({worst.pattern}); "
        f"target ≤ {RATIO_TARGET} {verdict}"
    )
    return "\n".join(lines)
