"""Text normalization: what the record's `text` is, given the decoded original.

1. A leading byte order mark (U+FEFF) is dropped: it marks the encoding, not the text.
2. Line breaks become `\\n`: CRLF, lone CR, U+2028, U+2029, U+0085, VT and FF.
3. Unicode NFC, so that the same visible text has one representation. (CPython puts the
   combining marks after a character in canonical order by insertion sort, which takes
   time quadratic in the length of a run of marks out of order; so a run of more than
   `_LONG_RUN` such marks is put in canonical order here first, by a linear stable sort
   on combining class. That gives the same NFC: canonical ordering is that very sort.)
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

import functools
import itertools
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
# Unicode's stream-safe format (UAX #15) allows 30 non-starters in a row; real text has few.
_LONG_RUN = 30


def normalize_text(decoded: str) -> str:
    text = _unify_line_breaks(decoded.removeprefix("\ufeff"))
    text = _nfc(text)
    if "  " in text or any(char in text for char in _UNTIDY_CHARS):
        text = _UNTIDY_SPACE.sub(_one_space, text)
    groups = _line_groups(text)
    if _hard_wrapped(groups):
        paragraphs = [_join_wrapped(group) for group in groups]
    else:
        paragraphs = [line for group in groups for line in group]
    return PARAGRAPH_BREAK.join(paragraphs)


def _nfc(text: str) -> str:
    if unicodedata.is_normalized("NFC", text):
        return text
    if _holds_long_run(text):
        text = _long_nonstarter_runs().sub(_canonical_order, text)
    return unicodedata.normalize("NFC", text)


def _holds_long_run(text: str) -> bool:
    """Whether `text` may hold more than `_LONG_RUN` non-starters in a row: a cheap test
    (at least that many characters outside ASCII) before the exact one."""
    return len(text.encode("utf-8")) - len(text) > _LONG_RUN and bool(
        _long_nonstarter_runs().search(text)
    )


@functools.cache
def _long_nonstarter_runs() -> re.Pattern[str]:
    """Runs of more than `_LONG_RUN` characters that decompose to non-starters only
    (combining class above 0): the combining marks, and the few characters of class 0
    that decompose to them (Tibetan U+0F73, U+0F75, U+0F81). Built on first use."""
    nonstarters = [
        char
        for char in map(chr, range(0x110000))
        if unicodedata.combining(char)
        or (
            unicodedata.decomposition(char)[:1] not in ("", "<")
            and all(map(unicodedata.combining, unicodedata.normalize("NFD", char)))
        )
    ]
    return re.compile(f"[{re.escape(''.join(nonstarters))}]{{{_LONG_RUN + 1},}}")


def _canonical_order(run: re.Match[str]) -> str:
    """A run of non-starters decomposed and stably sorted by combining class, buckets
    in class order: what NFD's canonical ordering makes of it, in linear time."""
    by_class: dict[int, list[str]] = {}
    for char in run.group():
        for part in unicodedata.normalize("NFD", char):
            by_class.setdefault(unicodedata.combining(part), []).append(part)
    return "".join("".join(by_class[key]) for key in sorted(by_class))


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
    parts = [group[0]]
    for previous, line in itertools.pairwise(group):
        if previous.endswith(_JOINING_HYPHENS) and len(previous) > 1 and previous[-2].isalpha():
            parts.append(line)
        else:
            parts.append(" " + line)
    return "".join(parts)
