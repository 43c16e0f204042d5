"""A record's spans as a tree of nested elements, block by block: what the viewer draws.

A record says where things are as `[start, end)` offsets into its text: blocks, quotes
(a quote inside a quote has a span inside its outer one), insertions, ellipses, and a
section's label. HTML needs them as nested elements, each paragraph its own element, so
`build_regions` turns the flat spans into one `Region` per block, whose children are text
and `Element`s, themselves nested. The record is taken as it is, never trusted to be
well formed (a hand-made or future record may hold anything): spans outside the text,
empty or inverted are left out; blocks that overlap are cut where the previous one ends,
and text outside every block that is not blank becomes a region of its own, so no text
is ever hidden. Spans that cross (neither inside the other) are split where the outer
one ends, the rest continuing beside it; a quote over several paragraphs becomes one
fragment in each. `first` and `last` say whether a fragment holds the span's start or
end, so a quote's depth is shown once and an unclosed quote is marked at its end.

Cost: one sort of the spans (linear on a record's spans, which the normalizer writes in
order: Timsort merges runs), then one sweep. At most MAX_DEPTH spans are shown over any
one character; spans beyond that are counted in `dropped` and not drawn, which bounds the
elements by (spans + blocks) x MAX_DEPTH however the spans nest or cross, and keeps a
browser's DOM shallow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.types import Block, Marked, Quote

MAX_DEPTH = 16
Kind = Literal["label", "quote", "insertion", "ellipsis"]
RegionKind = Literal["paragraph", "section", "outside"]
# Of spans with the same start and end, the first named is outermost.
_RANK: dict[Kind, int] = {"label": 0, "quote": 1, "insertion": 2, "ellipsis": 3}


@dataclass(slots=True)
class Element:
    """One fragment of a span: `index` is the span's place in its record list (for a
    label, the block's)."""

    kind: Kind
    index: int
    start: int
    end: int
    first: bool  # this fragment begins where the span begins
    last: bool  # this fragment ends where the span ends
    children: list[Element | str] = field(default_factory=list)


@dataclass(slots=True)
class Region:
    """A block (`index` into the record's blocks), or text outside every block."""

    kind: RegionKind
    index: int | None
    start: int
    end: int
    label: str | None = None
    children: list[Element | str] = field(default_factory=list)
    dropped: int = 0  # spans starting here not drawn: nested deeper than MAX_DEPTH


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    kind: Kind
    index: int
    depth: int = 0


def build_regions(
    text: str,
    blocks: Sequence[Block],
    quotes: Sequence[Quote],
    insertions: Sequence[Marked],
    ellipses: Sequence[Marked],
) -> list[Region]:
    regions = _regions(text, blocks)
    spans = _spans(text, regions, quotes, insertions, ellipses)
    active: list[_Span] = []  # spans over the current position, at most MAX_DEPTH
    taken = 0
    for number, region in enumerate(regions):
        following = regions[number + 1].start if number + 1 < len(regions) else len(text)
        active = [span for span in active if span.end > region.start]
        pieces = [(span, region.start, False, span.end <= following) for span in active]
        while taken < len(spans) and spans[taken].start < region.end:
            span = spans[taken]
            taken += 1
            if span.end <= region.start:  # only over a blank gap before the region
                continue
            active = [over for over in active if over.end > span.start]
            if len(active) >= MAX_DEPTH:
                region.dropped += 1
                continue
            active.append(span)
            pieces.append((span, max(span.start, region.start), True, span.end <= following))
        region.children = _nest(text, region, pieces)
    return regions


def flat_text(node: Region | Element) -> str:
    """The text a region or element holds, marks and all (for tests and checks)."""
    return "".join(c if isinstance(c, str) else flat_text(c) for c in node.children)


def _regions(text: str, blocks: Sequence[Block]) -> list[Region]:
    length = len(text)
    valid = sorted(
        (max(block.span[0], 0), min(block.span[1], length), index, block)
        for index, block in enumerate(blocks)
    )
    regions: list[Region] = []
    position = 0
    for start, end, index, block in valid:
        start = max(start, position)
        if start >= end:
            continue
        if text[position:start].strip():
            regions.append(Region("outside", None, position, start))
        regions.append(Region(block.kind, index, start, end, block.label))
        position = end
    if text[position:].strip():
        regions.append(Region("outside", None, position, length))
    return regions


def _spans(
    text: str,
    regions: list[Region],
    quotes: Sequence[Quote],
    insertions: Sequence[Marked],
    ellipses: Sequence[Marked],
) -> list[_Span]:
    """Every span within the text and not empty, in the order they open."""
    spans = [
        _Span(region.start, region.start + len(region.label), "label", region.index)
        for region in regions
        if region.kind == "section"
        and region.index is not None
        and region.label
        and text.startswith(region.label, region.start, region.end)
    ]
    spans += [_Span(*q.span, "quote", i, q.depth) for i, q in enumerate(quotes)]
    spans += [_Span(*m.span, "insertion", i) for i, m in enumerate(insertions)]
    spans += [_Span(*m.span, "ellipsis", i) for i, m in enumerate(ellipses)]
    kept = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    kept.sort(key=lambda s: (s.start, -s.end, _RANK[s.kind], s.depth, s.index))
    return kept


def _nest(
    text: str, region: Region, pieces: list[tuple[_Span, int, bool, bool]]
) -> list[Element | str]:
    """The region's children: its pieces (span, start, first, last), each cut at the
    region's end, nested by one sweep over a stack of open elements and their ends."""
    pieces.sort(key=lambda p: (p[1], -min(p[0].end, region.end), _RANK[p[0].kind], p[0].depth))
    root: list[Element | str] = []
    stack: list[tuple[Element, int]] = []  # open element, the end its span wants
    position = region.start
    # While no span crosses another, ends shrink up the stack: the top ends first.
    nested = True

    def emit(upto: int) -> None:
        nonlocal position
        if upto > position:
            (stack[-1][0].children if stack else root).append(text[position:upto])
            position = upto

    def close_through(limit: int) -> None:
        """Close, in order of their ends, the open elements ending at or before `limit`;
        those above a closed one and ending later continue in a new fragment."""
        while stack:
            soonest = stack[-1][1] if nested else min(end for _, end in stack)
            if soonest > limit:
                return
            emit(soonest)
            lowest = len(stack) - 1
            if nested:
                while lowest > 0 and stack[lowest - 1][1] == soonest:
                    lowest -= 1
            else:
                lowest = next(i for i, (_, end) in enumerate(stack) if end == soonest)
            cut = stack[lowest + 1 :]
            del stack[lowest:]
            for element, end in cut:
                if end == soonest:
                    continue
                going_on = Element(element.kind, element.index, soonest, end, False, element.last)
                element.end, element.last = soonest, False
                (stack[-1][0].children if stack else root).append(going_on)
                stack.append((going_on, end))

    for span, start, first, last in pieces:
        close_through(start)
        emit(start)
        end = min(span.end, region.end)
        element = Element(span.kind, span.index, start, end, first, last)
        (stack[-1][0].children if stack else root).append(element)
        if stack and end > stack[-1][1]:
            nested = False
        stack.append((element, end))
    close_through(region.end)
    emit(region.end)
    return root
