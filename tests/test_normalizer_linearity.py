"""The normalizer's work grows linearly with its input, however hostile (SPEC §10).

Work is counted, never timed: the Python line events that `analyze` executes, counted
with `sys.settrace`, are the same on every run and every machine. For each hostile
pattern (bench/hostile.py), 8 times the input may cost at most 10 times the work; the
quadratic scans these tests were written against cost about 60 times. A Hypothesis search
steers (`hypothesis.target`) towards inputs of the most work per added character and
holds them to a bound. Unicode normalization runs in C, where lines are not counted: its
work is the swaps CPython's canonical ordering makes (an insertion sort), counted on the
text the normalizer hands it.
"""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import strategies as st

from bench.hostile import PATTERNS, hostile_text
from service.normalize import analyze
from service.normalize import text as text_module

SMALL = 150
GROWTH = 8
MAX_WORK_RATIO = 10
# Line events per added character: articles cost 2-5, the worst input found 12; the
# quadratic scans cost hundreds at the sizes searched here.
MAX_WORK_PER_CHAR = 150


def line_events(text: str) -> int:
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        analyze(text)
    finally:
        sys.settrace(previous)
    return count


@pytest.fixture(scope="module", autouse=True)
def _loaded() -> None:
    """What is built once per process is built before any work is counted."""
    analyze("Load the language model before any work is counted.")
    analyze("a" + "\u0301\u0316" * 20)  # long runs of combining marks


@pytest.mark.parametrize("name", list(PATTERNS))
def test_eight_times_the_hostile_input_costs_at_most_ten_times_the_work(name: str) -> None:
    small = line_events(hostile_text(name, SMALL))
    large = line_events(hostile_text(name, SMALL * GROWTH))
    assert large <= MAX_WORK_RATIO * small, (name, small, large, large / small)


_PIECES = [
    *"“”‘’„‚«»‹›「」『』〝〞\"'[]….:",
    "a",
    "s",
    " ",
    "\n",
    "\n\n",
    "don’t",
    "’90s",
    "AB: ",
    "\u0301",
    "\u0316",
]
units = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6).map("".join)


@settings(
    max_examples=150,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.target],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(units, min_size=1, max_size=3), st.integers(min_value=60, max_value=150))
def test_no_input_found_costs_more_work_per_character_than_the_bound(
    parts: list[str], repeats: int
) -> None:
    def text(times: int) -> str:
        return "".join(part * times for part in parts)

    shorter, longer = text(repeats), text(2 * repeats)
    per_char = (line_events(longer) - line_events(shorter)) / (len(longer) - len(shorter))
    target(per_char, label="line events per added character")
    assert per_char <= MAX_WORK_PER_CHAR, (parts, repeats, per_char)


# -- Unicode normalization --------------------------------------------------------------


@contextmanager
def nfc_inputs() -> Iterator[list[str]]:
    """The texts handed to `unicodedata.normalize("NFC", …)` while the block runs."""
    seen: list[str] = []
    real = unicodedata.normalize

    def recording(form: str, text: str) -> str:
        if form == "NFC":
            seen.append(text)
        return real(form, text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_module.unicodedata, "normalize", recording)
        yield seen


def canonical_ordering_swaps(text: str) -> int:
    """The swaps an insertion sort by combining class makes over each run of non-starters
    of `text`'s decomposition: the inversions in each run."""
    swaps = 0
    run: dict[int, int] = {}  # combining class -> how many so far in this run
    for char in text:
        for part in unicodedata.normalize("NFD", char):  # one character: no long run
            combining = unicodedata.combining(part)
            if combining == 0:
                run.clear()
                continue
            swaps += sum(count for key, count in run.items() if key > combining)
            run[combining] = run.get(combining, 0) + 1
    return swaps


@pytest.mark.parametrize(
    "hostile",
    [
        "a" + "\u0301\u0316" * 2000,
        "a" + "\u0301" * 2000 + "\u0316" * 2000,
        ("é" + "\u0f73\u0316\u0301" * 40) * 20,
        "x" + "\u0344\u0316" * 1000,
    ],
    ids=["alternating", "reversed halves", "tibetan and composed", "decomposing mark"],
)
def test_unicode_normalization_gets_combining_marks_in_order(hostile: str) -> None:
    with nfc_inputs() as seen:
        normalized = text_module.normalize_text(hostile)
    assert normalized == unicodedata.normalize("NFC", hostile)
    assert seen, "NFC was not asked for"
    assert all(canonical_ordering_swaps(text) <= 4 * len(text) for text in seen)
