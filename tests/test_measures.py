"""Word counts and the simhash, against independent straightforward implementations."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings

from service.normalize.measures import simhash, words
from tests.strategies import article_text


def reference_simhash(tokens: list[str]) -> int:
    """Charikar's simhash as docs/format.md states it, one bit at a time."""
    hashes = [
        int.from_bytes(hashlib.blake2b(t.lower().encode(), digest_size=8).digest(), "big")
        for t in tokens
    ]
    result = 0
    for bit in range(64):
        if sum((h >> bit) & 1 for h in hashes) > len(hashes) / 2:
            result |= 1 << bit
    return result


@settings(max_examples=200, deadline=None)
@given(article_text)
def test_simhash_matches_the_reference(text: str) -> None:
    tokens = words(text)
    assert simhash(tokens) == reference_simhash(tokens)


def test_near_duplicates_are_near_and_others_far() -> None:
    base = (
        "The council approved the harbour budget on Tuesday after a long debate about "
        "ferries, bridges, buses and the cost of repairing the old pier before winter. "
    ) * 3
    edited = base.replace("Tuesday", "Wednesday")
    other = "Scientists reported a new species of frog in the cloud forests of Ecuador. " * 4
    near = bin(simhash(words(base)) ^ simhash(words(edited))).count("1")
    far = bin(simhash(words(base)) ^ simhash(words(other))).count("1")
    assert near < 8
    assert far > 16


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Don’t stop the well-known U.S. band",
            ["Don’t", "stop", "the", "well-known", "U.S", "band"],
        ),
        ("3.5 million, 10,000 people", ["3.5", "million", "10", "000", "people"]),
        (
            "東京で会う",
            ["で", "会", "う", "東", "京"],
        ),  # runs of kana and kanji, split per character
        ("서울 시장", ["서울", "시장"]),
        ("", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert sorted(words(text)) == sorted(expected)
