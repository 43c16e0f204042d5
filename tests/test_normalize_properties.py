"""Properties of the normalizer over generated text and over every corpus article."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import example, given, settings

from service.normalize import Analysis, analyze
from tests.conftest import CORPUS
from tests.strategies import article_text


def non_whitespace(text: str) -> str:
    return "".join(text.split())


def check_invariants(original: str, result: Analysis) -> None:
    text = result.text
    # No non-whitespace character is invented or lost (a leading BOM is dropped).
    expected = unicodedata.normalize("NFC", original.removeprefix("\ufeff"))
    assert non_whitespace(text) == non_whitespace(expected)
    assert unicodedata.is_normalized("NFC", text)
    assert "\r" not in text
    assert text == text.strip()

    # Blocks tile the text in order, separated by exactly one blank line.
    previous_end = -2
    for block in result.blocks:
        start, end = block.span
        assert start == previous_end + 2
        assert start < end
        assert "\n" not in text[start:end]
        assert text[start:end] == text[start:end].strip()
        assert (block.kind == "section") == (block.label is not None)
        if block.label is not None:
            assert text[start:end].startswith(block.label)
        previous_end = end
    assert previous_end == len(text) or (not result.blocks and text == "")

    def inside_blocks(span: tuple[int, int], first: int, last: int) -> bool:
        return result.blocks[first].span[0] <= span[0] <= span[1] <= result.blocks[last].span[1]

    def block_of(position: int) -> int:
        return next(i for i, b in enumerate(result.blocks) if b.span[0] <= position <= b.span[1])

    for quote in result.quotes:
        first, last = quote.blocks
        assert 0 <= first <= last < len(result.blocks)
        assert inside_blocks(quote.span, first, last)
        assert quote.depth >= 1
        if quote.depth > 1:  # nested inside a quote one level up
            assert any(
                outer.depth == quote.depth - 1
                and outer.span[0] <= quote.span[0]
                and quote.span[1] <= outer.span[1]
                for outer in result.quotes
            ), quote
    for marked in [*result.insertions, *result.ellipses]:
        start, end = marked.span
        index = block_of(start)
        assert inside_blocks(marked.span, index, index)
    for ellipsis in result.ellipses:
        assert text[ellipsis.span[0] : ellipsis.span[1]].replace(" ", "").strip(".") in ("", "…")

    assert result.stats.chars == len(text)
    assert result.stats.paragraphs == len(result.blocks)
    assert result.stats.quotes == len(result.quotes)
    assert len(result.fingerprints.simhash) == 16
    if result.headline is not None and result.headline.source == "detected":
        first_start, first_end = result.blocks[0].span
        assert result.headline.text == text[first_start:first_end]


@settings(max_examples=400, deadline=None)
@given(article_text)
@example("““ ”")  # an empty inner quote, its mark closing the outer one too
def test_normalizer_invariants_hold_for_any_text(original: str) -> None:
    result = analyze(original)
    check_invariants(original, result)
    assert analyze(original) == result  # deterministic


def corpus_texts() -> list[tuple[str, str]]:
    path = CORPUS / "articles.jsonl"
    if not path.is_file():
        return []
    return [(a["id"], a["text"]) for a in map(json.loads, path.read_text("utf-8").splitlines())]


@pytest.mark.skipif(not corpus_texts(), reason="shared article corpus not present")
def test_normalizer_invariants_hold_on_every_corpus_article() -> None:
    for article_id, original in corpus_texts():
        try:
            check_invariants(original, analyze(original))
        except AssertionError as failure:
            raise AssertionError(f"{article_id}: {failure}") from failure
