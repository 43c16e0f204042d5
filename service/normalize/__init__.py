"""The normalizer: pure functions from a decoded article to the parts of its record.

No I/O, no clock, no randomness: the same input gives the same output, byte for byte.
`NORMALIZER_VERSION` goes into every record's provenance; change it whenever the output
for some input changes. The rules are documented in each module and in docs/format.md.
"""

from __future__ import annotations

import msgspec

from service.normalize.blocks import split_blocks
from service.normalize.headline import find_headline
from service.normalize.language import detect_language
from service.normalize.marks import find_ellipses, find_insertions
from service.normalize.measures import measure
from service.normalize.quotes import find_quotes
from service.normalize.text import NORMALIZER_VERSION, normalize_text
from service.types import (
    Block,
    Fingerprints,
    Headline,
    Language,
    Marked,
    Quote,
    Stats,
)

__all__ = ["NORMALIZER_VERSION", "Analysis", "analyze", "normalize_text"]


class Analysis(msgspec.Struct, frozen=True):
    """Everything the normalizer computes for one article."""

    text: str
    headline: Headline | None
    blocks: list[Block]
    quotes: list[Quote]
    insertions: list[Marked]
    ellipses: list[Marked]
    language: Language | None
    stats: Stats
    fingerprints: Fingerprints


def analyze(decoded: str, asserted_title: str | None = None) -> Analysis:
    text = normalize_text(decoded)
    blocks = split_blocks(text)
    quotes = find_quotes(text, blocks)
    stats, fingerprints = measure(text, paragraphs=len(blocks), quotes=len(quotes))
    return Analysis(
        text=text,
        headline=find_headline(text, blocks, asserted_title),
        blocks=blocks,
        quotes=quotes,
        insertions=find_insertions(text, blocks),
        ellipses=find_ellipses(text),
        language=detect_language(text),
        stats=stats,
        fingerprints=fingerprints,
    )
