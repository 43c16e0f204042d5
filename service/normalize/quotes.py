"""Quotations: where they open and close, how deep they nest, which marks they use.

Each paragraph is first read greedily: the scanner walks its quotation marks in order,
keeping a stack of open quotes. For a mark it decides, in this order:

1. it *closes* the innermost open quote if it is one of that quote's closing marks and
   its position allows it (below);
2. else it *opens* a quote if it is an opening mark and its position allows it;
3. else it closes one of the `_OUTER_LOOK` quotes below the innermost that it matches;
   the quotes inside that one were never closed (`close: null`, ending where it ends);
4. else it is not a quotation mark here (an apostrophe, an inch sign, a stray mark).

When that reading leaves a mark other than an apostrophe unused, closes a quote with
quotes inside it open, or leaves a quote open at the paragraph's end that the next
paragraph does not continue, the paragraph is read again by pairing.py, which weighs every
mark as opener, closer or not a mark against the whole paragraph (`“…“`, `”…”`, `‘…‘`,
`“…’’`, a stray mark inside a title, a space after an opening mark).

Marks and their partners: “…” „…“ „…” ‘…’ ‚…‘ ‚…’ «…» »…« ‹…› ›…‹ 「…」 『…』 〝…〞 "…" '…',
and, for text that mixes styles, “…" „…" "…”.
Unambiguous openers (“ „ ‘ ‚ « ‹ 「 『 〝) open wherever they stand, so French padding
(`« texte »`) and a nested quote written with the outer marks (“a “b” c”) are handled.
Marks that may open or close (" ' » › ’) decide by position: *left-flanking* (a
non-space follows; a space, the paragraph's start, an opening bracket, a dash or another
mark precedes) opens, *right-flanking* (the mirror image) closes.

Apostrophes are never quotation marks: `’` or `'` between letters or digits (don’t,
rock’n’roll; but not before Hangul, kana or Han, which follow a closing mark directly),
at a word's start (’90s, ’em, ’n’, and `isn ‘t`), or after a word when no single quote is
open (Americans’). After an `s` with a single quote open, a `’` is an apostrophe if
another closing `’` follows in the same paragraph (‘the Americans’ votes’). A straight
`'` opens only when left-flanking, not an elision ('90s, 'em, 'tis) and followed in the
paragraph by a `'` that could close it.

Paragraph ends. A quote still open at the end of a paragraph is decided by looking ahead:
- the next paragraph opens with the same opening mark: the quote continues there (the
  usual convention for a quote running over several paragraphs) and that repeated mark
  is part of the quote, not a new one; inner quotes continue likewise if their marks are
  repeated too, else they end unclosed;
- the next paragraph opens with no mark, and the next quotation mark in the text is one
  that closes the innermost open quote: the quotes continue (a multi-paragraph quote
  without repeated marks);
- otherwise the open quotes end, unclosed, at the paragraph's end: a quote left open
  never swallows the narration that follows. One that would end right after a mark that
  closed a quote inside it ends where that one does («a «b» at a paragraph's end).

Spans cover what stands between the marks (punctuation inside the closing mark included),
without the spaces that pad marks (`« texte »` gives `texte`); a quote over several
paragraphs covers the paragraph breaks and repeated marks between.

Work is linear in the text: the last apostrophe of a block that could close is found once
per block, the paragraph-end look-ahead remembers what it found for every block it passed,
a mark looks at most `_OUTER_LOOK` quotes down the stack, and the decoder's work per mark
is bounded (pairing.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from service.normalize.pairing import _CHARACTERS_PER_MARK, _DECODED_MARKS, OPEN, Mark, decode
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
# Openers only the paragraph decoder uses (quotes opened the wrong way round, and two
# single marks standing for a double one), with what closes them.
_DECODER_CLOSERS: dict[str, frozenset[str]] = {
    "”": frozenset("”"),
    "’": frozenset("’"),
    "‘‘": frozenset({"’’", "”"}),
    "''": frozenset({"''"}),
}
_CLOSERS_OF = CLOSERS | _DECODER_CLOSERS
_PUNCTUATION = frozenset(".,;:!?)]}…")
_OUTER_LOOK = 8  # how many quotes below the innermost a mark may close
_UNAMBIGUOUS_OPENERS = frozenset("“„‘‚«‹「『〝")
_FLANKING_OPENERS = frozenset("\"'»›")  # open only when left-flanking
_SINGLE_OPENERS = frozenset("‘‚'")
_APOSTROPHES = frozenset("’'")
_DOUBLED = frozenset(["‘‘", "’’", "''"])  # two single marks for one double mark
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
# What follows an apostrophe at a word's start: ’90s, ’em, 'tis, and the clitics of a word
# typed with a space before its apostrophe (`isn ‘t`, `we ‘re`).
_ELISION = re.compile(
    r"(?i)(?:\d0s|\d\d\b|tis\b|twas\b|em\b|n\b|til\b|cause\b|bout\b|round\b"
    r"|t\b|s\b|d\b|ll\b|re\b|ve\b|m\b)"
)
# A ‘ before a capitalised word that follows a ‘ more than once in the text: a letter of
# a transliterated name (the ayn of ‘Aisyah, ‘Umar), not a quotation mark.
_AYN_WORD = re.compile(r"‘([^\W\d_][^\W_]*)")


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
        # Per (mark, block end): the last position in the block where that apostrophe
        # mark could close a quote, or -1; found once per block, by one backward scan.
        self.last_closing: dict[tuple[str, int], int] = {}
        # Per (single quote?, block index): the first mark from that block on that a
        # paragraph-end look-ahead stops at, as (position, block start, block end) or
        # None; each block is scanned at most once per kind.
        self.ahead: dict[tuple[bool, int], tuple[int, int, int] | None] = {}
        self.ayn_words: set[str] | None = None  # found on first use
        self.closed_before: dict[int, int] = {}  # a closing mark's end -> its start
        self.doubtful = False  # the greedy reading of this paragraph left a mark unused
        self.leading_of: tuple[int, list[tuple[int, str]]] = (-1, [])

    def run(self) -> list[Quote]:
        skip: set[int] = set()
        for index, block in enumerate(self.blocks):
            start, end = block.span
            stack, found, self.doubtful = self.stack[:], len(self.found), False
            for match in _QUOTE_MARK.finditer(self.text, start, end):
                if match.start() not in skip:
                    self._mark(match.start(), start, end, index)
            if (self.doubtful or (self.stack and self._left_open(index))) and self._decodable(
                start, end
            ):
                # Undo the greedy reading and let the decoder weigh the whole paragraph.
                self.stack = stack
                del self.found[found:]
                self._decode(index, skip)
            skip = self._paragraph_end(index) if self.stack else set()
        return sorted(self.found, key=lambda quote: (quote.span[0], -quote.span[1]))

    def _decodable(self, start: int, end: int) -> bool:
        """Whether the paragraph [start, end) is prose enough to hand to the decoder."""
        marks = len(_MARK.findall(self.text, start, end))
        return marks <= _DECODED_MARKS and marks * _CHARACTERS_PER_MARK <= end - start

    def _left_open(self, index: int) -> bool:
        """Whether the paragraph end after block `index` would leave quotes unclosed."""
        return self._continued(index, [quote.mark for quote in self.stack]) < len(self.stack)

    def _continued(self, index: int, stack: Sequence[str]) -> int:
        """How many of the open quotes `stack` (outermost first) continue after block
        `index` (the rule of `_paragraph_end`)."""
        if not stack or index + 1 == len(self.blocks):
            return 0
        leading = self._leading(index + 1)
        continued = 0
        for (_, mark), opener in zip(leading, stack, strict=False):
            if mark != opener:
                break
            continued += 1
        if not continued and not leading and self._next_mark_closes(stack[-1], index):
            return len(stack)
        return continued

    def _name_like(self, start: int, hi: int) -> bool:
        if self.ayn_words is None:
            words = Counter(_AYN_WORD.findall(self.text))
            self.ayn_words = {word for word, count in words.items() if count > 1}
        match = _AYN_WORD.match(self.text, start - 1, hi)
        return (
            match is not None and match.group(1)[0].isupper() and match.group(1) in self.ayn_words
        )

    def _decode(self, index: int, skip: set[int]) -> None:
        """Read block `index` with the paragraph decoder (pairing.py) instead."""
        lo, hi = self.blocks[index].span
        text = self.text
        marks: list[Mark] = []
        for match in _QUOTE_MARK.finditer(text, lo, hi):
            at = match.start()
            if at in skip:
                continue
            mark = text[at]
            if marks and marks[-1].at == at - 1 and marks[-1].mark + mark in _DOUBLED:
                at, mark = at - 1, marks.pop().mark + mark
            before = text[at - 1] if at > lo else ""
            after = text[at + len(mark)] if at + len(mark) < hi else ""
            left, right = _left_flanking(before, after), _right_flanking(before, after)
            if left and after in _PUNCTUATION:
                left = False  # padded before punctuation (`“ titolo “,`), not opening
            if mark in _APOSTROPHES and (
                _intraword(before, after)
                or (left and not right and (mark == "’" or _ELISION.match(text, at + 1, hi)))
            ):
                continue  # don’t, ’90s, 'tis
            single = mark[0] in _APOSTROPHES
            marks.append(
                Mark(
                    at=at,
                    mark=mark,
                    left=left,
                    right=right,
                    last=after == "",
                    elision=mark in ("‘", "'") and bool(_ELISION.match(text, at + 1, hi)),
                    closes_single=right or not left or bool(_NO_APOSTROPHES.match(after)),
                    name=mark == "‘" and self._name_like(at + 1, hi),
                    possessive=single
                    and before in ("s", "S")
                    and self._closing_apostrophe_after(mark[0], at + len(mark), lo, hi),
                )
            )
        singles = sum(item.mark in ("‘", "’") for item in marks)
        if singles > 1:  # another single mark could pair with it: no ayn
            marks = [item._replace(name=False) for item in marks]
        openers = [quote.mark for quote in self.stack]
        actions = decode(marks, openers, hi, lambda opened: self._continued(index, opened))
        for item, action in zip(marks, actions, strict=True):
            if action == OPEN:
                self.stack.append(
                    _Open(item.mark, item.at + len(item.mark), len(self.stack) + 1, index)
                )
            elif action >= 0:
                self._close(action, item.at, item.mark, index)

    def _leading(self, index: int) -> list[tuple[int, str]]:
        if self.leading_of[0] != index:
            self.leading_of = (index, self._leading_marks(self.blocks[index]))
        return self.leading_of[1]

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
        top = self.stack[-1].mark if self.stack else None
        if top is not None and self._closes(mark, top, at, lo, hi, left, right):
            self._close(len(self.stack) - 1, at, mark, block)
        elif self._opens(mark, at, lo, hi, left, right):
            self.stack.append(_Open(mark, at + 1, len(self.stack) + 1, block))
        else:
            # The innermost outer quote this mark can close, among the `_OUTER_LOOK`
            # quotes below the innermost: whether it may close depends on the quote only
            # through its closing marks, so the first that takes the mark decides.
            for level in range(len(self.stack) - 2, max(len(self.stack) - 2 - _OUTER_LOOK, -1), -1):
                if mark in _CLOSERS_OF[self.stack[level].mark]:
                    if self._closes(mark, self.stack[level].mark, at, lo, hi, left, right):
                        self._close(level, at, mark, block)
                        self.doubtful = True  # quotes inside were never closed
                        return
                    break
            if mark not in _APOSTROPHES:
                self.doubtful = True  # a quotation mark of no use

    def _closes(
        self, mark: str, opener: str, at: int, lo: int, hi: int, left: bool, right: bool
    ) -> bool:
        if mark not in _CLOSERS_OF[opener]:
            return False
        if mark in _APOSTROPHES:
            after = self.text[at + 1] if at + 1 < hi else ""
            if not (right or _NO_APOSTROPHES.match(after)):
                return False
            before = self.text[at - 1] if at > 0 else ""
            # ‘the Americans’ votes’: an s’ followed by another closing ’ is possessive.
            return not (before in "sS" and self._closing_apostrophe_after(mark, at + 1, lo, hi))
        if mark == '"':  # where it would rather open, it nests instead
            return right or not left
        return True

    def _opens(self, mark: str, at: int, lo: int, hi: int, left: bool, right: bool) -> bool:
        if mark in _UNAMBIGUOUS_OPENERS:
            return not (mark == "‘" and _ELISION.match(self.text, at + 1, hi))
        if mark == "'":
            return left and not right and self._closing_apostrophe_after(mark, at + 1, lo, hi)
        if mark == '"':
            return not right  # left-flanking, or padded with spaces
        if mark in _FLANKING_OPENERS:
            return left and not right
        return False

    def _closing_apostrophe_after(self, mark: str, start: int, lo: int, hi: int) -> bool:
        """Whether a `mark` that could close a quote stands in [start, hi), the rest of
        the block [lo, hi): whether the block's last such mark does (start > lo)."""
        key = (mark, hi)
        last = self.last_closing.get(key)
        if last is None:
            last = self.text.rfind(mark, lo, hi)
            while last != -1:
                before = self.text[last - 1] if last > lo else ""
                after = self.text[last + 1] if last + 1 < hi else ""
                if not _intraword(before, after) and _right_flanking(before, after):
                    break
                last = self.text.rfind(mark, lo, last)
            self.last_closing[key] = last
        return last >= start

    def _close(self, level: int, at: int, mark: str | None, block: int) -> None:
        """Close stack[level] at `at`; quotes inside it end there unclosed. Left open at
        the paragraph's end (`mark` None) right after a mark that closed a quote inside,
        a quote ends where that one does: one mark closing both («a «b» at the end)."""
        if mark is None:
            at = self.closed_before.get(at, at)
        else:
            self.closed_before[at + len(mark)] = at
        while len(self.stack) > level:
            quote = self.stack.pop()
            closing = mark if len(self.stack) == level else None
            start, end = quote.start, at
            while start < end and self.text[start].isspace():  # « padded »
                start += 1
            while end > start and self.text[end - 1].isspace():
                end -= 1
            if start == end:  # nothing but spaces: empty, where it opens
                start = end = quote.start
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
        leading = self._leading(index + 1)
        continued = 0
        for (_, mark), quote in zip(leading, self.stack, strict=False):
            if mark != quote.mark:
                break
            continued += 1
        if continued:
            self._close(continued, end, None, index)
            return {at for at, _ in leading[:continued]}
        if not leading and self._next_mark_closes(self.stack[-1].mark, index):
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

    def _next_mark_closes(self, opener: str, index: int) -> bool:
        """Whether the first quotation mark after block `index` closes a quote opened
        with `opener`."""
        found = self._first_mark_from(opener in _SINGLE_OPENERS, index + 1)
        if found is None:
            return False
        at, lo, hi = found
        before = self.text[at - 1] if at > lo else ""
        after = self.text[at + 1] if at + 1 < hi else ""
        left, right = _left_flanking(before, after), _right_flanking(before, after)
        return self._closes(self.text[at], opener, at, lo, hi, left, right)

    def _first_mark_from(self, single: bool, first: int) -> tuple[int, int, int] | None:
        """The first mark in block `first` or later that is not an apostrophe (for a
        single quote, not an apostrophe that could not close it); remembered for every
        block passed over, so that no block is scanned twice."""
        passed = []
        found: tuple[int, int, int] | None = None
        for index in range(first, len(self.blocks)):
            if (single, index) in self.ahead:
                found = self.ahead[single, index]
                break
            passed.append(index)
            found = self._first_mark_in(single, *self.blocks[index].span)
            if found is not None:
                break
        for index in passed:
            self.ahead[single, index] = found
        return found

    def _first_mark_in(self, single: bool, lo: int, hi: int) -> tuple[int, int, int] | None:
        for match in _MARK.finditer(self.text, lo, hi):
            at = match.start()
            if match.group() in _APOSTROPHES:
                before = self.text[at - 1] if at > lo else ""
                after = self.text[at + 1] if at + 1 < hi else ""
                left, right = _left_flanking(before, after), _right_flanking(before, after)
                if not single or _intraword(before, after) or (left and not right):
                    continue  # an apostrophe, not the mark looked for
            return at, lo, hi
        return None


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
