"""Scoring: what a system found against what a reader labelled.

A system may normalize whitespace (the record's `text` is not the corpus text byte for
byte), so spans are compared in *ink* coordinates: a span becomes the pair (non-space
characters before its start, non-space characters before its end). Two spans match when
they hold the same non-space characters, whatever spaces pad them or lie between
paragraphs. Everything else is compared exactly:

- quotes: precision, recall and F1 on the span ("text") and on span and depth;
  recall per phenomenon tag counts a labelled quote found with its span and depth;
- paragraphs: the article's paragraph count;
- sections: the article's section labels, all of them and nothing else;
- insertions: precision and recall on the span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate

import msgspec

from tests.eval.corpus import Article, Label, Span


class Found(msgspec.Struct, frozen=True):
    """What one system found in one article; spans index `text`."""

    text: str
    paragraphs: int
    sections: tuple[Span, ...]  # each label without its colon
    quotes: tuple[tuple[Span, int], ...]  # (span, depth)
    insertions: tuple[Span, ...]


class Counts(msgspec.Struct, frozen=True):
    true_positives: int
    labelled: int
    found: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.labelled if self.labelled else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


class Scores(msgspec.Struct, frozen=True):
    articles: int
    quotes_text: Counts
    quotes_depth: Counts
    tag_recall: dict[str, Counts]  # found = labelled quotes of the tag that were found
    paragraphs_wrong: list[tuple[str, int, int]]  # article, labelled, found
    sections_wrong: list[tuple[str, int, int]]  # article, labels missed, labels extra
    insertions: Counts


class InkMismatch(Exception):
    """The system's text holds other non-space characters than the corpus text."""


def ink_of(text: str) -> list[int]:
    """For each index 0..len(text), how many non-space characters stand before it."""
    return [0, *accumulate(0 if char.isspace() else 1 for char in text)]


def _ink_text(text: str) -> str:
    return "".join(char for char in text if not char.isspace())


def _keys(ink: Sequence[int], spans: Iterable[Span]) -> Counter[Span]:
    return Counter((ink[start], ink[end]) for start, end in spans)


def _matched(labelled: Counter[Span], found: Counter[Span]) -> int:
    return sum((labelled & found).values())


def score(labels: Sequence[Label], articles: dict[str, Article], found: dict[str, Found]) -> Scores:
    text_tp = text_l = text_f = depth_tp = 0
    ins_tp = ins_l = ins_f = 0
    tag_hits: Counter[str] = Counter()
    tag_all: Counter[str] = Counter()
    paragraphs_wrong: list[tuple[str, int, int]] = []
    sections_wrong: list[tuple[str, int, int]] = []
    for label in labels:
        text = articles[label.article].text
        got = found[label.article]
        if _ink_text(text) != _ink_text(got.text):
            raise InkMismatch(f"{label.article}: the system changed more than whitespace")
        ink, got_ink = ink_of(text), ink_of(got.text)

        want_spans = _keys(ink, (quote.span for quote in label.quotes))
        got_spans = _keys(got_ink, (span for span, _ in got.quotes))
        text_tp += _matched(want_spans, got_spans)
        text_l += len(label.quotes)
        text_f += len(got.quotes)

        got_depths = Counter(
            ((got_ink[start], got_ink[end]), depth) for (start, end), depth in got.quotes
        )
        for quote in label.quotes:
            key = ((ink[quote.span[0]], ink[quote.span[1]]), quote.depth)
            hit = got_depths[key] > 0
            if hit:
                got_depths[key] -= 1
                depth_tp += 1
            for tag in quote.tags:
                tag_all[tag] += 1
                tag_hits[tag] += hit

        if got.paragraphs != label.paragraphs:
            paragraphs_wrong.append((label.article, label.paragraphs, got.paragraphs))
        want_sections = _keys(ink, label.sections)
        got_sections = _keys(got_ink, got.sections)
        if want_sections != got_sections:
            sections_wrong.append(
                (
                    label.article,
                    sum((want_sections - got_sections).values()),
                    sum((got_sections - want_sections).values()),
                )
            )

        ins_tp += _matched(_keys(ink, label.insertions), _keys(got_ink, got.insertions))
        ins_l += len(label.insertions)
        ins_f += len(got.insertions)

    return Scores(
        articles=len(labels),
        quotes_text=Counts(text_tp, text_l, text_f),
        quotes_depth=Counts(depth_tp, text_l, text_f),
        tag_recall={
            tag: Counts(tag_hits[tag], tag_all[tag], tag_hits[tag]) for tag in sorted(tag_all)
        },
        paragraphs_wrong=paragraphs_wrong,
        sections_wrong=sections_wrong,
        insertions=Counts(ins_tp, ins_l, ins_f),
    )
