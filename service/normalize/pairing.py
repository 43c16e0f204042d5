"""Pairing the quotation marks of one paragraph so that its quotes balance best.

The quote scanner (quotes.py) reads marks greedily, one at a time. Where that leaves a
quotation mark unused, closes a quote with quotes inside it still open, or leaves a
quote open at the paragraph's end that the next paragraph does not continue, the
paragraph is handed here: each of its marks becomes an *opener*, a *closer* or *not a
mark*, the choice of least total cost over the whole paragraph. Costs:

- shape: a mark opening the wrong way round (`”…”`, `’…’`, as Swedish and Finnish write
  them) or closing with an opening mark (`“…“`, `‘…‘`, common in Italian text) costs
  more than a textbook pair (`“…”`); two single marks may stand for a double one (`’’`
  closing a `“` quote, `‘‘…’’`);
- flanking: an opener should have a non-space after it and a space or punctuation
  before, a closer the mirror image; a mark padded with spaces (`« texte »`, `‘ this’`)
  costs a little, one that points the wrong way more;
- not a mark: leaving a `“` `”` `«` `»` … unused costs much; a `‘` less (it is also an
  ayn, `‘Aisyah`, or a misplaced apostrophe, `isn ‘t`); `’` and `'` nothing (apostrophes);
- nesting: each level beyond the first costs a little, so a title written with the outer
  marks does not push every later quote one level deeper;
- distance: each character an open quote runs over costs a very little;
- open at the end: a quote the next paragraph does not continue costs, more for single
  marks (mostly apostrophes) than for double and national ones; a quote closed while
  quotes inside it are open costs as much for each of those.

The search goes mark by mark, keeping the `BEAM` cheapest readings so far (two readings
with the same open quotes are one: the cheaper is kept), with at most `MAX_DEPTH` quotes
open and a closer trying only the innermost open quote and the innermost one it pairs
with. That is linear in the paragraph's marks, and the scanner hands over only paragraphs
of at most `_DECODED_MARKS` marks and at least `_CHARACTERS_PER_MARK` characters per
mark (prose; others keep the greedy reading), so the work per character is bounded too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

BEAM = 8
MAX_DEPTH = 4
_DECODED_MARKS = 200
_CHARACTERS_PER_MARK = 12

NOT_A_MARK = -1
OPEN = -2  # any other action is the stack level the mark closes

_TEXTBOOK = {
    "“": '”"',
    "„": '“”"',
    "‘": "’",
    "‚": "‘’",
    "«": "»",
    "»": "«",
    "‹": "›",
    "›": "‹",
    "「": "」",
    "『": "』",
    "〝": "〞〟",
    '"': '"”',
    "'": "'",
}
PAIR_COST: dict[tuple[str, str], float] = {
    (opener, closer): 0.0 for opener, closers in _TEXTBOOK.items() for closer in closers
} | {
    ("“", "“"): 0.6,
    ("‘", "‘"): 0.6,
    ("”", "”"): 0.0,
    ("’", "’"): 0.0,
    ("»", "»"): 0.0,
    ("“", "’’"): 0.3,
    ("‘‘", "’’"): 0.0,
    ("‘‘", "”"): 0.3,
    ("''", "''"): 0.0,
    ('"', "''"): 0.3,
}
# What opening costs for its shape; a mark absent here never opens.
_OPEN_SHAPE = {
    **dict.fromkeys('“„‘‚«‹「『〝"»›', 0.0),
    "'": 0.3,
    "”": 0.8,
    "’": 0.8,
    "‘‘": 0.0,
    "''": 0.3,
}
_GUILLEMETS = frozenset("«»‹›「」『』")
_NOT_A_MARK = {"’": 0.0, "'": 0.0, '"': 1.0, "‘": 0.8, "‚": 0.5, "’’": 1.0, "''": 0.5}
# An opener inside a quote opened with the same mark is the likelier stray of the two.
_STRAY_INSIDE = 0.1
_NOT_A_MARK_OTHERWISE = 1.5
_SINGLE = frozenset(["‘", "‚", "'", "’", "‹", "›"])
_UNCLOSED_DOUBLE = 1.0
_UNCLOSED_SINGLE = 0.4
_UNCLOSED_INSIDE = 2.0  # a quote still open inside one that closes
_NAME = 1.0
_NESTING = 0.25
_PER_CHARACTER = 0.0005
_WRONG_WAY_OPEN = 1.5
_WRONG_WAY_CLOSE = 0.6
_PADDED = 0.3
_POSSESSIVE = 0.2


class Mark(NamedTuple):
    at: int
    mark: str  # one character, or two for doubled single marks
    left: bool  # left-flanking
    right: bool  # right-flanking
    last: bool  # nothing follows it in the paragraph: it never opens
    elision: bool  # an opening ‘ or ' before `90s`, `em`, `tis` …: never opens
    closes_single: bool  # as ’ or ': may close (right-flanking, padded, or before Hangul)
    name: bool  # a ‘ that looks like a letter of a name (‘Aisyah), with no other single
    # mark in the paragraph to pair with: opening costs more
    possessive: bool  # an s’ with another ’ that could close after it in the paragraph


class _Reading(NamedTuple):
    cost: float
    stack: tuple[tuple[str, int], ...]  # (opening mark, position) of each open quote
    actions: tuple[object, ...] | None  # (previous actions, action): a linked list


def open_cost(mark: Mark) -> float | None:
    shape = _OPEN_SHAPE.get(mark.mark)
    if shape is None or mark.elision or mark.last:
        return None
    if mark.name:
        shape += _NAME
    if mark.left and not mark.right:
        return shape
    if mark.right and not mark.left:
        return shape + _WRONG_WAY_OPEN
    return shape + (0.0 if mark.mark in _GUILLEMETS else _PADDED)


def close_cost(opener: str, mark: Mark) -> float | None:
    pair = PAIR_COST.get((opener, mark.mark))
    if pair is None:
        return None
    if mark.mark[0] in "’'":
        if not mark.closes_single:
            return None
        pair += _POSSESSIVE if mark.possessive else 0.0
    if mark.right:
        return pair
    if mark.left:
        return pair + _WRONG_WAY_CLOSE
    return pair + (0.0 if mark.mark in _GUILLEMETS else _PADDED)


def decode(
    marks: Sequence[Mark],
    stack: Sequence[str],
    end: int,
    continued: Callable[[tuple[str, ...]], int],
) -> list[int]:
    """For each of `marks`, NOT_A_MARK, OPEN or the stack level it closes, given the
    opening marks of the quotes open before the paragraph (`stack`, outermost first, at
    position -1) and its end position; `continued(opening marks)` says how many of the
    quotes open at the end, outermost first, the next paragraph continues."""
    readings = [_Reading(0.0, tuple((mark, -1) for mark in stack), None)]
    position = marks[0].at if marks else end
    for mark in marks:
        step = (mark.at - position) * _PER_CHARACTER
        position = mark.at
        best: dict[tuple[tuple[str, int], ...], _Reading] = {}

        for reading in readings:
            base = reading.cost + step * len(reading.stack)
            stray = _not_a_mark(mark)
            if any(opener == mark.mark for opener, _ in reading.stack):
                stray -= _STRAY_INSIDE
            _offer(best, base + stray, reading.stack, (reading.actions, NOT_A_MARK))
            opening = open_cost(mark)
            if opening is not None and len(reading.stack) < MAX_DEPTH:
                nested = _NESTING * len(reading.stack)
                _offer(
                    best,
                    base + opening + nested,
                    (*reading.stack, (mark.mark, mark.at)),
                    (reading.actions, OPEN),
                )
            for level in _closable_levels(reading.stack, mark):
                closing = close_cost(reading.stack[level][0], mark)
                if closing is None:
                    continue
                inner = reading.stack[level + 1 :]
                _offer(
                    best,
                    base + closing + _UNCLOSED_INSIDE * len(inner),
                    reading.stack[:level],
                    (reading.actions, level),
                )
        readings = sorted(best.values(), key=lambda reading: reading.cost)[:BEAM]

    def total(reading: _Reading) -> float:
        opened = reading.stack
        kept = continued(tuple(mark for mark, _ in opened))
        tail = (end - position) * _PER_CHARACTER * len(opened)
        return reading.cost + tail + sum(map(_unclosed, opened[kept:]))

    chosen = min(readings, key=total)
    actions: list[int] = []
    history: object = chosen.actions
    while history is not None:
        history, action = history  # type: ignore[misc]
        actions.append(action)  # type: ignore[has-type]
    actions.reverse()
    return actions


def _offer(
    best: dict[tuple[tuple[str, int], ...], _Reading],
    cost: float,
    opened: tuple[tuple[str, int], ...],
    history: object,
) -> None:
    """Keep the cheaper of two readings that leave the same quotes open."""
    known = best.get(opened)
    if known is None or cost < known.cost:
        best[opened] = _Reading(cost, opened, history)  # type: ignore[arg-type]


def _not_a_mark(mark: Mark) -> float:
    return _NOT_A_MARK.get(mark.mark, _NOT_A_MARK_OTHERWISE)


def _unclosed(quote: tuple[str, int]) -> float:
    return _UNCLOSED_SINGLE if quote[0] in _SINGLE else _UNCLOSED_DOUBLE


def _closable_levels(stack: tuple[tuple[str, int], ...], mark: Mark) -> list[int]:
    """The innermost open quote, and the innermost below it that `mark` pairs with."""
    if not stack:
        return []
    levels = [len(stack) - 1]
    for level in range(len(stack) - 2, max(len(stack) - 1 - MAX_DEPTH, -1), -1):
        if (stack[level][0], mark.mark) in PAIR_COST:
            levels.append(level)
            break
    return levels
