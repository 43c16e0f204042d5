"""Text normalization: what the record's `text` is, given the decoded original.

1. A leading byte order mark (U+FEFF) is dropped: it marks the encoding, not the text.
2. Line breaks become `\\n`: CRLF, lone CR, U+2028, U+2029, U+0085, VT and FF.
3. Unicode NFC, so that the same visible text has one representation.
4. Each line is trimmed, and each run of other whitespace inside it becomes one space
   (one no-break space if the run holds a no-break space: U+00A0, U+202F or U+2007,
   which typography uses on purpose, e.g. before `»` or `:` in French).
5. Lines become paragraphs, and paragraphs are joined by exactly one blank line (`\\n\\n`):
   - normally every non-blank line is a paragraph ("a line break separates paragraphs");
   - a *hard-wrapped* text — at least two groups of lines separated by blank lines, one
     group of two or more lines, and at least 90% of its lines 100 characters or shorter —
     has its wrapped lines joined: each group of lines becomes one paragraph, its lines
     joined by one space, or by nothing after a line ending in a hyphen (`-` or U+2010)
     that follows a letter (`well-` + `known` gives `well-known`).

Only whitespace changes: every other character of the decoded text is kept, in order.
Typography (curly quotes, apostrophes, dashes, ellipses) is kept as written.
"""

from __future__ import annotations

import re
import unicodedata

NORMALIZER_VERSION = "1.0"
PARAGRAPH_BREAK = "\n\n"

_LINE_BREAKS = "\u2028\u2029\u0085\x0b\x0c"  # and CR, alone or before LF
# Whitespace other than a single space or a line break: the runs that need tidying.
_UNTIDY_SPACE = re.compile(r"[^\S\n]{2,}|[^\S\n ]")
# The characters _UNTIDY_SPACE looks for besides a second space: every whitespace
# character (`str.isspace`, the same as `\s`) but space and LF. All lie in the BMP.
_UNTIDY_CHARS = "".join(re.findall(r"[^\S\n ]", "".join(map(chr, range(0x10000)))))
_NO_BREAK_SPACES = "\u00a0\u202f\u2007"
_WRAP_WIDTH = 100
_WRAPPED_SHARE = 0.9
_JOINING_HYPHENS = ("-", "\u2010")


def normalize_text(decoded: str) -> str:
    text = _unify_line_breaks(decoded.removeprefix("\ufeff"))
    text = unicodedata.normalize("NFC", text)
    if "  " in text or any(char in text for char in _UNTIDY_CHARS):
        text = _UNTIDY_SPACE.sub(_one_space, text)
    groups = _line_groups(text)
    if _hard_wrapped(groups):
        paragraphs = [_join_wrapped(group) for group in groups]
    else:
        paragraphs = [line for group in groups for line in group]
    return PARAGRAPH_BREAK.join(paragraphs)


def _unify_line_breaks(text: str) -> str:
    # Each `in` is a fast scan, and most texts hold none of these.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for char in _LINE_BREAKS:
        if char in text:
            text = text.replace(char, "\n")
    return text


def _one_space(run: re.Match[str]) -> str:
    for char in run.group():
        if char in _NO_BREAK_SPACES:
            return char
    return " "


def _line_groups(text: str) -> list[list[str]]:
    """Tidied non-blank lines, grouped by the blank lines between them."""
    groups: list[list[str]] = [[]]
    for raw in text.split("\n"):
        line = raw.strip()
        if line:
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    return [group for group in groups if group]


def _hard_wrapped(groups: list[list[str]]) -> bool:
    if len(groups) < 2 or all(len(group) == 1 for group in groups):
        return False
    lines = [line for group in groups for line in group]
    short = sum(len(line) <= _WRAP_WIDTH for line in lines)
    return short >= _WRAPPED_SHARE * len(lines)


def _join_wrapped(group: list[str]) -> str:
    joined = group[0]
    for line in group[1:]:
        if joined.endswith(_JOINING_HYPHENS) and len(joined) > 1 and joined[-2].isalpha():
            joined += line
        else:
            joined += " " + line
    return joined
