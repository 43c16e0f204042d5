"""Blocks: the normalized text's paragraphs, and which of them are labelled sections.

A paragraph is a *section* when it opens with a label. A label is one to five words of
capital letters — digits and `’ ' . & - /` allowed inside, at least two letters in all —
followed by a colon, optionally after one no-break space (U+00A0 or U+202F, as French
typography sets it: `NOTE DE LA RÉDACTION : …`), then a space or the paragraph's end.
`EDITOR’S NOTE: …`, `CORRECTION: …`, `FTC: …` and `DEAR ABBY: …` are sections; `Q: …`
(one letter), `Note: …` (not capitals), `10:30 …` and a `VIP : 60,000` row of a price
list (a plain space before the colon) are not.

The article's first paragraph is a section only when a later section's label begins
with the same word (`DEAR ABBY: …` opening an advice column whose answers are `DEAR
WORRIED: …`); otherwise a label there is a dateline (`NEW DELHI: …`, `WASHINGTON: …`).
"""

from __future__ import annotations

from service.normalize.text import PARAGRAPH_BREAK
from service.types import Block

_LABEL_MAX_CHARS = 60
_LABEL_MAX_WORDS = 5
_LABEL_MIN_LETTERS = 2
_LABEL_PUNCTUATION = frozenset("’'.&-/")


def split_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    start = 0
    first_label: str | None = None
    later_first_words: set[str] = set()
    for index, paragraph in enumerate(text.split(PARAGRAPH_BREAK) if text else []):
        end = start + len(paragraph)
        label = section_label(paragraph)
        if label is not None:
            if index == 0:
                first_label, label = label, None
            else:
                later_first_words.add(label.split(" ", 1)[0])
        blocks.append(
            Block(kind="section" if label else "paragraph", span=(start, end), label=label)
        )
        start = end + len(PARAGRAPH_BREAK)
    if first_label is not None and first_label.split(" ", 1)[0] in later_first_words:
        blocks[0] = Block(kind="section", span=blocks[0].span, label=first_label)
    return blocks


def section_label(paragraph: str) -> str | None:
    """The label a paragraph opens with, without its colon, or None."""
    colon = paragraph.find(":", 0, _LABEL_MAX_CHARS)
    if colon < 1 or paragraph[colon + 1 : colon + 2] not in ("", " ", "\u00a0"):
        return None
    label = paragraph[:colon].removesuffix("\u00a0").removesuffix("\u202f")
    words = label.split(" ")
    if not 1 <= len(words) <= _LABEL_MAX_WORDS or not all(words):
        return None
    letters = 0
    for char in label.replace(" ", ""):
        if char.isalpha():
            if not char.isupper():
                return None
            letters += 1
        elif not char.isdigit() and char not in _LABEL_PUNCTUATION:
            return None
    return label if letters >= _LABEL_MIN_LETTERS else None
