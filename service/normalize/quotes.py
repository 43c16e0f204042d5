"""Quotations: where they open and close, how deep they nest, which marks they use.

The scanner walks the quotation marks of each paragraph in order, keeping a stack of open
quotes. For a mark it decides, in this order:

1. it *closes* the innermost open quote if it is one of that quote's closing marks and
   its position allows it (below);
2. else it *opens* a quote if it is an opening mark and its position allows it;
3. else it closes an outer open quote that it matches; the quotes inside that one were
   never closed (`close: null`, ending where the outer one ends);
4. else it is not a quotation mark here (an apostrophe, an inch sign, a stray mark).

Marks and their partners: “…” „…“ „…” ‘…’ ‚…‘ ‚…’ «…» »…« ‹…› ›…‹ 「…」 『…』 〝…〞 "…" '…',
and, for text that mixes styles, “…" „…" "…”.
Unambiguous openers (“ „ ‘ ‚ « ‹ 「 『 〝) open wherever they stand, so French padding
(`« texte »`) and a nested quote written with the outer marks (“a “b” c”) are handled.
Marks that may open or close (" ' » › ’) decide by position: *left-flanking* (a
non-space follows; a space, the paragraph's start, an opening bracket, a dash or another
mark precedes) opens, *right-flanking* (the mirror image) closes.

Apostrophes are never quotation marks: `’` or `'` between letters or digits (don’t,
rock’n’roll; but not before Hangul, kana or Han, which follow a closing mark directly),
at a word's start (’90s, ’em, ’n’), or after a word when no single quote is open
(Americans’). After an `s` with a single quote open, a `’` is an apostrophe if another
closing `’` follows in the same paragraph (‘the Americans’ votes’). A straight `'` opens
only when left-flanking, not an elision ('90s, 'em, 'tis) and followed in the paragraph by
a `'` that could close it.

Paragraph ends. A quote still open at the end of a paragraph is decided by looking ahead:
- the next paragraph opens with the same opening mark: the quote continues there (the
  usual convention for a quote running over several paragraphs) and that repeated mark
  is part of the quote, not a new one; inner quotes continue likewise if their marks are
  repeated too, else they end unclosed;
- the next paragraph opens with no mark, and the next quotation mark in the text is one
  that closes the innermost open quote: the quotes continue (a multi-paragraph quote
  without repeated marks);
- otherwise the open quotes end, unclosed, at the paragraph's end: a quote left open
  never swallows the narration that follows.

Spans cover what stands between the marks (punctuation inside the closing mark included),
without the spaces that pad marks (`« texte »` gives `texte`); a quote over several
paragraphs covers the paragraph breaks and repeated marks between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.types import Block, Quote

CLOSERS: dict[str, frozenset[str]] = {
    "“": frozenset('”"'),
    "„": frozenset('“”"'),
    "‘": frozenset("’"),
    "‚": frozenset("‘’"),
    "«": frozenset("»"),
    "»": frozenset("«"),
    "‹": frozenset("›"),
    "›": frozenset("‹"),
    "「": frozenset("」"),
    "『": frozenset("』"),
    "〝": frozenset("〞〟"),
    '"': frozenset('"”'),
    "'": frozenset("'"),
}
_UNAMBIGUOUS_OPENERS = frozenset("“„‘‚«‹「『〝")
_FLANKING_OPENERS = frozenset("\"'»›")  # open only when left-flanking
_SINGLE_OPENERS = frozenset("‘‚'")
_APOSTROPHES = frozenset("’'")
_ALL_MARKS = frozenset("".join(CLOSERS) + "".join("".join(c) for c in CLOSERS.values()) + "’")
_MARK = re.compile("[" + re.escape("".join(sorted(_ALL_MARKS))) + "]")
_BEFORE_OPENING = frozenset("([{<—–-/¿¡") | _ALL_MARKS
_AFTER_CLOSING = frozenset(".,;:!?)]}>…—–-/") | _ALL_MARKS
# Scripts without apostrophes: a ’ between their letters closes a quote (Korean particles
# follow the closing mark directly: ‘리벤지’의).
_NO_APOSTROPHES = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af]")
# A mark but for an apostrophe between letters or digits (`_intraword`), about half of all
# marks in English, which `_mark` would pass over: the regex engine skips those faster.
# Blocks are separated by line breaks, so what precedes a block is never a letter.
_QUOTE_MARK = re.compile(
    f"{_MARK.pattern}(?!(?<=[^\\W_][’'])(?=[^\\W_])(?!{_NO_APOSTROPHES.pattern}))"
)
_ELISION = re.compile(r"(?i)(?:\d0s|\d\d\b|tis\b|twas\b|em\b|n\b|til\b|cause\b|bout\b|round\b)")


@dataclass
class _Open:
    mark: str
    start: int  # first code point inside the quote
    depth: int
    block: int


class _Scanner:
    def __init__(self, text: str, blocks: list[Block]) -> None:
        self.text = text
        self.blocks = blocks
        self.stack: list[_Open] = []
        self.found: list[Quote] = []

    def run(self) -> list[Quote]:
        skip: set[int] = set()
        for index, block in enumerate(self.blocks):
            start, end = block.span
            for match in _QUOTE_MARK.finditer(self.text, start, end):
                if match.start() not in skip:
                    self._mark(match.start(), start, end, index)
            skip = self._paragraph_end(index) if self.stack else set()
        return sorted(self.found, key=lambda quote: (quote.span[0], -quote.span[1]))

    # -- one mark -------------------------------------------------------------------

    def _mark(self, at: int, lo: int, hi: int, block: int) -> None:
        mark = self.text[at]
        before = self.text[at - 1] if at > lo else ""
        after = self.text[at + 1] if at + 1 < hi else ""
        left = _left_flanking(before, after)
        right = _right_flanking(before, after)
        if mark in _APOSTROPHES:
            if _intraword(before, after):
                return  # don’t, rock’n’roll, O'Brien
            if left and not right and (mark == "’" or _ELISION.match(self.text, at + 1, hi)):
                return  # ’90s, ’em, 'tis
        top = self.stack[-1] if self.stack else None
        if top is not None and self._closes(mark, top, at, hi, left, right):
            self._close(len(self.stack) - 1, at, mark, block)
        elif self._opens(mark, at, hi, left, right):
            self.stack.append(_Open(mark, at + 1, len(self.stack) + 1, block))
        else:
            for level in range(len(self.stack) - 2, -1, -1):
                if self._closes(mark, self.stack[level], at, hi, left, right):
                    self._close(level, at, mark, block)
                    return

    def _closes(self, mark: str, quote: _Open, at: int, hi: int, left: bool, right: bool) -> bool:
        if mark not in CLOSERS[quote.mark]:
            return False
        if mark in _APOSTROPHES:
            after = self.text[at + 1] if at + 1 < hi else ""
            if not (right or _NO_APOSTROPHES.match(after)):
                return False
            before = self.text[at - 1] if at > 0 else ""
            # ‘the Americans’ votes’: an s’ followed by another closing ’ is possessive.
            return not (before in "sS" and self._closing_apostrophe_after(mark, at + 1, hi))
        if mark == '"':  # where it would rather open, it nests instead
            return right or not left
        return True

    def _opens(self, mark: str, at: int, hi: int, left: bool, right: bool) -> bool:
        if mark in _UNAMBIGUOUS_OPENERS:
            return not (mark == "‘" and _ELISION.match(self.text, at + 1, hi))
        if mark == "'":
            return left and not right and self._closing_apostrophe_after(mark, at + 1, hi)
        if mark == '"':
            return not right  # left-flanking, or padded with spaces
        if mark in _FLANKING_OPENERS:
            return left and not right
        return False

    def _closing_apostrophe_after(self, mark: str, start: int, hi: int) -> bool:
        at = self.text.find(mark, start, hi)
        while at != -1:
            before = self.text[at - 1]
            after = self.text[at + 1] if at + 1 < hi else ""
            if not _intraword(before, after) and _right_flanking(before, after):
                return True
            at = self.text.find(mark, at + 1, hi)
        return False

    def _close(self, level: int, at: int, mark: str | None, block: int) -> None:
        """Close stack[level] at `at`; quotes inside it end there unclosed."""
        while len(self.stack) > level:
            quote = self.stack.pop()
            closing = mark if len(self.stack) == level else None
            start, end = quote.start, at
            while start < end and self.text[start].isspace():  # « padded »
                start += 1
            while end > start and self.text[end - 1].isspace():
                end -= 1
            self.found.append(
                Quote(
                    span=(start, end),
                    depth=quote.depth,
                    open=quote.mark,
                    close=closing,
                    blocks=(quote.block, block),
                )
            )

    # -- paragraph ends -------------------------------------------------------------

    def _paragraph_end(self, index: int) -> set[int]:
        """Decide what open quotes do after block `index`; return the positions of
        repeated opening marks in the next block that continue them."""
        if not self.stack:
            return set()
        end = self.blocks[index].span[1]
        if index + 1 == len(self.blocks):
            self._close(0, end, None, index)
            return set()
        leading = self._leading_marks(self.blocks[index + 1])
        continued = 0
        for (_, mark), quote in zip(leading, self.stack, strict=False):
            if mark != quote.mark:
                break
            continued += 1
        if continued:
            self._close(continued, end, None, index)
            return {at for at, _ in leading[:continued]}
        if not leading and self._next_mark_closes(self.stack[-1], end):
            return set()
        self._close(0, end, None, index)
        return set()

    def _leading_marks(self, block: Block) -> list[tuple[int, str]]:
        marks = []
        at, end = block.span
        while at < end and (self.text[at] in _ALL_MARKS or self.text[at] == " "):
            if self.text[at] != " ":
                marks.append((at, self.text[at]))
            at += 1
        return marks

    def _next_mark_closes(self, quote: _Open, start: int) -> bool:
        for block in self.blocks:
            lo, hi = block.span
            if hi <= start:
                continue
            for match in _MARK.finditer(self.text, max(lo, start), hi):
                at = match.start()
                before = self.text[at - 1] if at > lo else ""
                after = self.text[at + 1] if at + 1 < hi else ""
                mark = match.group()
                left, right = _left_flanking(before, after), _right_flanking(before, after)
                if mark in _APOSTROPHES and (
                    quote.mark not in _SINGLE_OPENERS
                    or _intraword(before, after)
                    or (left and not right)
                ):
                    continue  # an apostrophe, not the mark we look for
                return self._closes(mark, quote, at, hi, left, right)
        return False


def _intraword(before: str, after: str) -> bool:
    """Between two letters or digits of a script that writes apostrophes."""
    return before.isalnum() and after.isalnum() and not _NO_APOSTROPHES.match(after)


def _left_flanking(before: str, after: str) -> bool:
    """A non-space follows; the start, a space, an opening bracket, dash or mark precedes."""
    if after == "" or after.isspace():
        return False
    return before == "" or before.isspace() or before in _BEFORE_OPENING


def _right_flanking(before: str, after: str) -> bool:
    """A non-space precedes; the end, a space, punctuation or a mark follows."""
    if before == "" or before.isspace():
        return False
    return after == "" or after.isspace() or after in _AFTER_CLOSING


def find_quotes(text: str, blocks: list[Block]) -> list[Quote]:
    return _Scanner(text, blocks).run()
