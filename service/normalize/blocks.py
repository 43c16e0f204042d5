"""Blocks: the normalized text's paragraphs, and which of them are labelled sections.

A paragraph is a *section* when it opens with a label and is not the article's first
paragraph (a label there is a dateline, `NEW DELHI: …`). A label is one to five words of
capital letters — digits and `’ ' . & - /` allowed inside, at least two letters in all —
followed by a colon, optionally after one space (`VIP : …`), then a space or the
paragraph's end. `EDITOR’S NOTE: …`, `CORRECTION: …`, `FTC: …` and `DEAR ABBY: …` are
sections; `Q: …` (one letter), `Note: …` (not capitals) and `10:30 …` are not.
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
    for index, paragraph in enumerate(text.split(PARAGRAPH_BREAK) if text else []):
        end = start + len(paragraph)
        label = section_label(paragraph) if index > 0 else None
        blocks.append(
            Block(kind="section" if label else "paragraph", span=(start, end), label=label)
        )
        start = end + len(PARAGRAPH_BREAK)
    return blocks


def section_label(paragraph: str) -> str | None:
    """The label a paragraph opens with, without its colon, or None."""
    colon = paragraph.find(":", 0, _LABEL_MAX_CHARS)
    if colon < 1 or paragraph[colon + 1 : colon + 2] not in ("", " ", "\u00a0"):
        return None
    label = paragraph[:colon].removesuffix(" ")
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
