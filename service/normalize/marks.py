"""Editorial insertions in square brackets, and ellipses.

An insertion is a matched `[…]` pair inside one paragraph; its span is what stands
between the brackets (nested pairs each count; an unmatched bracket is not an
insertion). An ellipsis is `…` (U+2026), three or more full stops (`...`), or spaced
stops (`. . .`); its span covers the whole mark.
"""

from __future__ import annotations

import re

from service.types import Block, Marked

# `…|\.{3,}|\.(?: \.){2,}`, written so that every branch opens with a literal: the regex
# engine then skips ahead to the next `…` or `.` instead of trying each position.
_ELLIPSIS = re.compile(r"…|\.(?:\.{2,}|(?: \.){2,})")
_BRACKETS = re.compile(r"[\[\]]")


def find_insertions(text: str, blocks: list[Block]) -> list[Marked]:
    if "[" not in text:
        return []
    found: list[Marked] = []
    for block in blocks:
        start, end = block.span
        opened: list[int] = []
        for bracket in _BRACKETS.finditer(text, start, end):
            if bracket.group() == "[":
                opened.append(bracket.end())
            elif opened:
                found.append(Marked(span=(opened.pop(), bracket.start())))
    return sorted(found, key=lambda marked: marked.span)


def find_ellipses(text: str) -> list[Marked]:
    if "…" not in text and ". ." not in text and "..." not in text:
        return []
    return [Marked(span=match.span()) for match in _ELLIPSIS.finditer(text)]
