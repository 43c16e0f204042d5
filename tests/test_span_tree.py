"""service.span_tree: a record's spans as nested elements, per block, for the viewer.

Whatever the record holds (spans out of order, crossing, out of bounds, nested without
end), the tree keeps every character of every block exactly once and in order, nests no
deeper than MAX_DEPTH, and costs linear work.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.span_tree import MAX_DEPTH, Element, Region, build_regions, flat_text
from service.types import Block, Marked, Quote


def paragraph(start: int, end: int) -> Block:
    return Block(kind="paragraph", span=(start, end), label=None)


def quote(start: int, end: int, depth: int = 1, close: str | None = "”") -> Quote:
    return Quote(span=(start, end), depth=depth, open="“", close=close, blocks=(0, 0))


def shape(node: Element | str) -> object:
    """An element as (kind, index, first, last, [children]); text as itself."""
    if isinstance(node, str):
        return node
    return (node.kind, node.index, node.first, node.last, [shape(c) for c in node.children])


def regions_of(text: str, blocks, quotes=(), insertions=(), ellipses=()) -> list[Region]:  # type: ignore[no-untyped-def]
    return build_regions(text, list(blocks), list(quotes), list(insertions), list(ellipses))


def test_a_nested_quote_is_an_element_inside_its_outer_one() -> None:
    text = "“He said ‘no’ twice.”"
    (region,) = regions_of(text, [paragraph(0, len(text))], [quote(1, 20), quote(10, 12, 2)])
    assert [shape(c) for c in region.children] == [
        "“",
        (
            "quote",
            0,
            True,
            True,
            ["He said ‘", ("quote", 1, True, True, ["no"]), "’ twice."],
        ),
        "”",
    ]


def test_a_quote_over_three_paragraphs_is_one_fragment_in_each() -> None:
    text = "Intro.\n\n“One.\n\n“Two.\n\n“Three,” she said."
    blocks = [paragraph(0, 6), paragraph(8, 13), paragraph(15, 20), paragraph(22, 40)]
    start, end = text.index("One"), text.index(",”") + 1
    regions = regions_of(text, blocks, [quote(start, end)])
    assert [shape(c) for c in regions[0].children] == ["Intro."]
    assert [shape(c) for c in regions[1].children] == ["“", ("quote", 0, True, False, ["One."])]
    assert [shape(c) for c in regions[2].children] == [("quote", 0, False, False, ["“Two."])]
    assert [shape(c) for c in regions[3].children] == [
        ("quote", 0, False, True, ["“Three,"]),
        "” she said.",
    ]


def test_crossing_spans_split_the_later_one_at_the_earlier_ones_end() -> None:
    text = "abcdefghij"
    (region,) = regions_of(text, [paragraph(0, 10)], [quote(1, 6)], [Marked(span=(4, 8))])
    assert [shape(c) for c in region.children] == [
        "a",
        ("quote", 0, True, True, ["bcd", ("insertion", 0, True, False, ["ef"])]),
        ("insertion", 0, False, True, ["gh"]),
        "ij",
    ]


def test_a_section_label_is_an_element_at_the_sections_start() -> None:
    text = "EDITOR’S NOTE: Fixed."
    section = Block(kind="section", span=(0, len(text)), label="EDITOR’S NOTE")
    (region,) = regions_of(text, [section])
    assert region.kind == "section"
    assert [shape(c) for c in region.children] == [
        ("label", 0, True, True, ["EDITOR’S NOTE"]),
        ": Fixed.",
    ]


def test_equal_spans_nest_by_depth() -> None:
    text = "“‘x’”"
    (region,) = regions_of(text, [paragraph(0, 5)], [quote(2, 3, 2), quote(2, 3, 1)])
    assert [shape(c) for c in region.children] == [
        "“‘",
        ("quote", 1, True, True, [("quote", 0, True, True, ["x"])]),
        "’”",
    ]


def test_text_outside_every_block_is_shown_and_blank_gaps_are_not() -> None:
    text = "one\n\nstray\n\ntwo"
    regions = regions_of(text, [paragraph(0, 3), paragraph(12, 15)])
    assert [(r.kind, r.index, flat_text(r)) for r in regions] == [
        ("paragraph", 0, "one"),
        ("outside", None, "\n\nstray\n\n"),
        ("paragraph", 1, "two"),
    ]


def test_bad_spans_are_left_out_and_never_raise() -> None:
    text = "abc"
    regions = regions_of(
        text,
        [paragraph(0, 3), paragraph(2, 99)],  # overlapping, out of bounds
        [quote(2, 1), quote(5, 9), quote(1, 1)],  # inverted, outside, empty
    )
    assert "".join(flat_text(r) for r in regions) == "abc"
    assert all(isinstance(c, str) for r in regions for c in r.children)


def test_nesting_stops_at_the_maximum_depth() -> None:
    n = MAX_DEPTH + 40
    text = "x" * (2 * n + 1)
    quotes = [quote(i, len(text) - i, i + 1) for i in range(n)]
    (region,) = regions_of(text, [paragraph(0, len(text))], quotes)
    deepest, node = 0, region.children
    while any(isinstance(c, Element) for c in node):
        deepest += 1
        node = next(c for c in node if isinstance(c, Element)).children
    assert deepest == MAX_DEPTH
    assert flat_text(region) == text
    assert region.dropped == n - MAX_DEPTH


def test_many_quotes_over_many_blocks_cost_linear_work() -> None:
    """Every quote spans every block: without the depth bound this is quadratic."""

    def elements(n: int) -> int:
        text = "\n".join("p" for _ in range(n))
        blocks = [paragraph(2 * i, 2 * i + 1) for i in range(n)]
        quotes = [quote(0, len(text)) for _ in range(n)]
        return sum(_count(r.children) for r in regions_of(text, blocks, quotes))

    small, large = elements(500), elements(5000)
    assert large <= 11 * small  # ten times the input, about ten times the elements


def _count(children: list[Element | str]) -> int:
    return sum(1 + _count(c.children) for c in children if isinstance(c, Element))


spans = st.tuples(st.integers(-3, 40), st.integers(-3, 40))


@given(
    text=st.text(alphabet="ab “”\n", max_size=40),
    block_spans=st.lists(spans, max_size=6),
    quote_spans=st.lists(st.tuples(spans, st.integers(1, 4)), max_size=8),
    insertion_spans=st.lists(spans, max_size=4),
)
def test_any_record_shows_its_text_in_order_leaving_out_only_blank_gaps(
    text: str,
    block_spans: list[tuple[int, int]],
    quote_spans: list[tuple[tuple[int, int], int]],
    insertion_spans: list[tuple[int, int]],
) -> None:
    blocks = [paragraph(*span) for span in block_spans]
    quotes = [quote(*span, depth=depth) for span, depth in quote_spans]
    insertions = [Marked(span=span) for span in insertion_spans]
    position = 0
    for region in regions_of(text, blocks, quotes, insertions):
        assert region.start >= position
        assert not text[position : region.start].strip()
        assert flat_text(region) == text[region.start : region.end]
        _check_nodes(region.children, region.start, region.end, 0)
        position = region.end
    assert not text[position:].strip()


def _check_nodes(children: list[Element | str], start: int, end: int, depth: int) -> None:
    """Children tile [start, end) without gaps or empty text, no deeper than MAX_DEPTH."""
    assert depth <= MAX_DEPTH
    position = start
    for child in children:
        if isinstance(child, str):
            assert child
            position += len(child)
        else:
            assert child.start == position < child.end
            _check_nodes(child.children, child.start, child.end, depth + 1)
            position = child.end
    assert position == end
