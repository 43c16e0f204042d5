"""The headline: the asserted title, or a clear title line; never a guess from prose.

With a `source.title` asserted, that is the headline (`source: "asserted"`), verbatim.
Otherwise the first paragraph is a detected headline only when it is clearly a title line:
- more paragraphs follow it;
- 3 to 15 words and at most 120 characters;
- no sentence punctuation at its end (`.` `,` `;` `:` `…` `?` `!` `。` `、` `！` `？`, also
  before a closing quotation mark) and no sentence break inside (`. ` then a capital);
- not all in capitals (a kicker or a label), no web or mail address, at most one colon;
- not a byline (`By …`) and not a dateline (ending in a dash).
Scripts written without spaces between words (Chinese, Japanese) have no detected
headline: their word count cannot be read off the line.
"""

from __future__ import annotations

import re

from service.types import Block, Headline

_MIN_WORDS = 3
_MAX_WORDS = 15
_MAX_CHARS = 120
_CLOSING_MARKS = "”’\"'»«」』)"
_SENTENCE_END = (".", ",", ";", ":", "…", "?", "!", "。", "、", "！", "？")
_SENTENCE_BREAK = re.compile(r"[.!?][”’\"']?\s+[A-Z]")
_BYLINE = re.compile(r"(?i)by\s")
_ADDRESS = re.compile(r"://|www\.|@")
_DASHES = ("—", "–", "-")


def find_headline(text: str, blocks: list[Block], asserted_title: str | None) -> Headline | None:
    if asserted_title is not None and asserted_title.strip():
        return Headline(text=asserted_title, source="asserted")
    if len(blocks) < 2 or blocks[0].kind != "paragraph":
        return None
    start, end = blocks[0].span
    first = text[start:end]
    return Headline(text=first, source="detected") if is_title_line(first) else None


def is_title_line(line: str) -> bool:
    words = line.split()
    if not _MIN_WORDS <= len(words) <= _MAX_WORDS or len(line) > _MAX_CHARS:
        return False
    if line.rstrip(_CLOSING_MARKS).endswith(_SENTENCE_END) or line.endswith(_DASHES):
        return False
    if line.upper() == line or line.count(":") > 1:
        return False  # capitals only (or no cased letters at all)
    return not (_SENTENCE_BREAK.search(line) or _BYLINE.match(line) or _ADDRESS.search(line))
